package dsl

import (
	"fmt"
	"math"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    int64
		wantErr string
	}{
		{in: "0", want: 0},
		{in: "512", want: 512},
		{in: "512B", want: 512},
		{in: "64KiB", want: 64 << 10},
		{in: "64 KiB", want: 64 << 10},
		{in: "1kB", want: 1000},
		{in: "1KB", want: 1000},
		{in: "1MB", want: 1_000_000},
		{in: "1.5GiB", want: 3 << 29},
		{in: "1.5KB", want: 1500},
		{in: "2TiB", want: 2 << 40},
		{in: ".5KiB", want: 512},
		{in: "8589934591GiB", want: 8589934591 << 30},
		{in: "", wantErr: "empty size"},
		{in: "-1", wantErr: `negative size "-1"`},
		{in: "-1KiB", wantErr: `negative size "-1KiB"`},
		{in: "+1", wantErr: `invalid size "+1": bad number "+1"`},
		{in: "1.2.3", wantErr: `invalid size "1.2.3": bad number "1.2.3"`},
		{in: "KiB", wantErr: `invalid size "KiB": it must start with a number, as in 64KiB`},
		{in: "64 ", wantErr: `invalid size "64 ": trailing space`},
		{in: "64kib", wantErr: `unknown unit "kib" in size "64kib"; did you mean "64KiB"?`},
		{in: "64mb", wantErr: `unknown unit "mb" in size "64mb"; did you mean "64MB"?`},
		{in: "64Ki", wantErr: `unknown unit "Ki" in size "64Ki"; did you mean "64KiB"?`},
		{in: "1e3", wantErr: `unknown unit "e3" in size "1e3" (use B, kB, MB, GB, KiB, MiB or GiB)`},
		{in: "64 bytes", wantErr: `unknown unit "bytes" in size "64 bytes" (use B, kB, MB, GB, KiB, MiB or GiB)`},
		{in: "0.5", wantErr: `size "0.5" is not a whole number of bytes`},
		{in: "1.3KiB", wantErr: `size "1.3KiB" is not a whole number of bytes`},
		{in: "8589934592GiB", wantErr: `size "8589934592GiB" is out of range (the maximum is 9223372036854775807 bytes)`},
		{in: "9223372036854775808", wantErr: `size "9223372036854775808" is out of range (the maximum is 9223372036854775807 bytes)`},
		{in: "1" + string(make([]byte, 0)) + "00000000000000000000000000000000000000000000", wantErr: `size "100000000000000000000000000000000000000000000" is out of range`},
	} {
		got, err := ParseSize(tc.in)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("ParseSize(%q) = %d, %v, want error %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v, want %d", tc.in, got, err, tc.want)
		}
	}
	if got, err := ParseSize("9223372036854775807"); err != nil || got != math.MaxInt64 {
		t.Errorf("ParseSize(MaxInt64) = %d, %v, want %d", got, err, int64(math.MaxInt64))
	}
}

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{in: "0", want: 0},
		{in: "250ms", want: 250 * time.Millisecond},
		{in: "1m30s", want: 90 * time.Second},
		{in: "1.5h", want: 90 * time.Minute},
		{in: "10µs", want: 10 * time.Microsecond},
		{in: "+5s", want: 5 * time.Second},
		{in: "", wantErr: "empty duration (write one such as 250ms or 1m30s)"},
		{in: "10", wantErr: `missing unit in duration "10" (did you mean "10s"?)`},
		{in: "1m30", wantErr: `missing unit in duration "1m30" (did you mean "1m30s"?)`},
		{in: "-5s", wantErr: `negative duration "-5s"`},
		{in: "10sec", wantErr: `unknown unit "sec" in duration "10sec" (did you mean "10s"?)`},
		{in: "5 minutes", wantErr: `unknown unit " minutes" in duration "5 minutes" (use ns, us, ms, s, m or h)`},
		{in: "10 s", wantErr: `invalid duration "10 s": remove the spaces (did you mean "10s"?)`},
		{in: "2hours", wantErr: `unknown unit "hours" in duration "2hours" (did you mean "2h"?)`},
		{in: "1d", wantErr: `unknown unit "d" in duration "1d" (there is no day unit; write hours, as in 24h)`},
		{in: "1h5mins", wantErr: `unknown unit "mins" in duration "1h5mins" (did you mean "1h5m"?)`},
		{in: "5S", wantErr: `unknown unit "S" in duration "5S" (did you mean "5s"?)`},
		{in: "abc", wantErr: `invalid duration "abc" (write one such as 250ms or 1m30s)`},
		{in: "1..5s", wantErr: `invalid duration "1..5s" (write one such as 250ms or 1m30s)`},
		{in: "1s.5", wantErr: `missing unit in duration "1s.5" (did you mean "1s.5s"?)`},
		{in: "1.s", want: time.Second},
		{in: "99999999999999999999ns", wantErr: `duration "99999999999999999999ns" is out of range (the maximum is about 290 years)`},
		{in: "9999999999h", wantErr: `duration "9999999999h" is out of range (the maximum is about 290 years)`},
	} {
		got, err := ParseDuration(tc.in)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("ParseDuration(%q) = %v, %v, want error %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v, want %v", tc.in, got, err, tc.want)
		}
	}
}

func ExampleParseSize() {
	for _, s := range []string{"64KiB", "1.5MB", "64kib"} {
		n, err := ParseSize(s)
		fmt.Println(n, err)
	}
	// Output:
	// 65536 <nil>
	// 1500000 <nil>
	// 0 unknown unit "kib" in size "64kib"; did you mean "64KiB"?
}

// FuzzParseSize checks that ParseSize never panics, never returns a
// negative size, and that what it accepts as bytes it accepts again.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"512", "64KiB", "1MB", "1.5GiB", "-1", "9223372036854775808", "1e3", "1 kB", ".5KiB", "0x10"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("ParseSize(%q) = %d, negative", s, n)
		}
		if m, err := ParseSize(fmt.Sprint(n)); err != nil || m != n {
			t.Fatalf("ParseSize(%q) = %d, but ParseSize(%d) = %d, %v", s, n, n, m, err)
		}
	})
}

// FuzzParseDuration checks that ParseDuration never panics, never returns
// a negative duration and agrees with time.ParseDuration where it accepts.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"250ms", "1m", "1h30m", "-5s", "5", "1.5s", "2562048h", "1d", "0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		if d < 0 {
			t.Fatalf("ParseDuration(%q) = %v, negative", s, d)
		}
		if std, err := time.ParseDuration(s); err == nil && std != d {
			t.Fatalf("ParseDuration(%q) = %v, time.ParseDuration says %v", s, d, std)
		}
	})
}
