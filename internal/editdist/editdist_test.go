package editdist

import "testing"

func TestRunes(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"abc", "", 3},
		{"", "abc", 3},
		{"abc", "abc", 0},
		{"abc", "acb", 1},
		{"kitten", "sitting", 3},
		{"ca", "abc", 3}, // optimal string alignment, not unrestricted
	} {
		if got := Runes([]rune(tc.a), []rune(tc.b)); got != tc.want {
			t.Errorf("Runes(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
