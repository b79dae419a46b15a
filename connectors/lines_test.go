package connectors

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// lines frames src with max and returns the messages and how many lines
// were too long.
func lines(t testing.TB, r io.Reader, max int) (out []string, long int) {
	lr := newLineReader(r, max)
	for {
		line, err := lr.next()
		switch {
		case err == nil:
			out = append(out, string(line))
		case errors.Is(err, ErrLineTooLong):
			long++
		case errors.Is(err, io.EOF):
			switch last, err := lr.rest(); {
			case err != nil:
				long++
			case last != nil:
				out = append(out, string(last))
			}
			return out, long
		default:
			t.Fatalf("next: %v", err)
		}
	}
}

func TestLineFraming(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		max      int
		want     []string
		long     int
	}{
		{"plain", "a\nb\n", 0, []string{"a", "b"}, 0},
		{"no final newline", "a\nb", 0, []string{"a", "b"}, 0},
		{"crlf", "a\r\nb\r\n", 0, []string{"a", "b"}, 0},
		{"blank lines skipped", "\n\na\n  \n\r\nb\n", 0, []string{"a", "b"}, 0},
		{"too long skipped, next kept", "aaaaaa\nbb\n", 4, []string{"bb"}, 1},
		{"exactly max", "aaaa\n", 4, []string{"aaaa"}, 0},
		{"long final line", "a\nbbbbbbb", 4, []string{"a"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, long := lines(t, iotest.OneByteReader(bytes.NewReader([]byte(tc.in))), tc.max)
			if !equal(got, tc.want) || long != tc.long {
				t.Errorf("got %q (%d too long), want %q (%d)", got, long, tc.want, tc.long)
			}
		})
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// FuzzLineFraming checks the framing of file and stdin sources: however
// the input is split into reads, every message is a non-blank line of the
// input without its line ending, in order, and no line longer than max
// becomes a message.
func FuzzLineFraming(f *testing.F) {
	f.Add([]byte("a\nb\r\n\n c \n"), 4)
	f.Add([]byte("aaaaaaaa\nb"), 3)
	f.Add([]byte("\r\r\n\n"), 1)
	f.Fuzz(func(t *testing.T, in []byte, max int) {
		if max < 1 || max > 1<<16 {
			return
		}
		got, _ := lines(t, iotest.OneByteReader(bytes.NewReader(in)), max)
		var want []string
		for _, l := range bytes.Split(in, []byte("\n")) {
			// max counts a line's \r but not its \n.
			if len(l) > max {
				continue
			}
			if l = bytes.TrimRight(l, "\r"); len(bytes.TrimSpace(l)) > 0 {
				want = append(want, string(l))
			}
		}
		if !equal(got, want) {
			t.Fatalf("framed %q (max %d) as %q, want %q", in, max, got, want)
		}
	})
}
