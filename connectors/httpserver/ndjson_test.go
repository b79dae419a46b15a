package httpserver

import (
	"bytes"
	"slices"
	"testing"
)

func TestSplitNDJSON(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"\n\n \t\n", nil},
		{"a", []string{"a"}},
		{"a\n", []string{"a"}},
		{"a\r\nb\r\n", []string{"a", "b"}},
		{"a\n\nb", []string{"a", "b"}},
		{" a \n", []string{" a "}},
		{"a\r\r\n", []string{"a\r"}},
	} {
		var got []string
		for _, b := range SplitNDJSON([]byte(tc.in)) {
			got = append(got, string(b))
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("SplitNDJSON(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSplitNDJSONLinesDoNotShareCapacity(t *testing.T) {
	lines := SplitNDJSON([]byte("ab\ncd"))
	_ = append(lines[0], 'X')
	if string(lines[1]) != "cd" {
		t.Fatalf("appending to line 0 changed line 1 to %q", lines[1])
	}
}

// FuzzNDJSON checks that splitting loses and invents nothing: the lines,
// rejoined, are the input's non-blank lines without their "\r\n" ends.
func FuzzNDJSON(f *testing.F) {
	for _, s := range []string{"", "{}\n", "{\"a\":1}\r\n{\"a\":2}", "\n\n", " \t\r\n", "a\rb\n", "\r"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		orig := bytes.Clone(body)
		lines := SplitNDJSON(body)
		if !bytes.Equal(body, orig) {
			t.Fatal("SplitNDJSON modified its input")
		}
		var want [][]byte
		for _, l := range bytes.Split(body, []byte("\n")) {
			l = bytes.TrimSuffix(l, []byte("\r"))
			if len(bytes.TrimSpace(l)) > 0 {
				want = append(want, l)
			}
		}
		if len(lines) != len(want) {
			t.Fatalf("got %d lines, want %d", len(lines), len(want))
		}
		for i, l := range lines {
			if !bytes.Equal(l, want[i]) {
				t.Fatalf("line %d = %q, want %q", i, l, want[i])
			}
			if bytes.IndexByte(l, '\n') >= 0 || len(bytes.TrimSpace(l)) == 0 || cap(l) != len(l) {
				t.Fatalf("line %d = %q (cap %d): has a newline, is blank or shares capacity", i, l, cap(l))
			}
		}
	})
}

func TestSplitNumberedCountsBlankLines(t *testing.T) {
	_, nums := splitNumbered([]byte("a\n\n \nb\r\nc"))
	if want := []int{1, 4, 5}; !slices.Equal(nums, want) {
		t.Fatalf("splitNumbered line numbers = %v, want %v", nums, want)
	}
}
