package stages_test

import "testing"

// Integers beyond int64 and uint64 that no expression touches pass through
// a map byte for byte; one an expression reads is a double (issue 20
// item 8).
func TestMapKeepsUntouchedBigIntegers(t *testing.T) {
	for _, tc := range []struct{ stage, in, want string }{
		{`map: {set: {x: 'msg.id + 1'}}`,
			`{"id":12,"big":-9223372036854775809}`, `{"big":-9223372036854775809,"id":12,"x":13}`},
		{`map: {set: {x: 'msg.id + 1'}}`,
			`{"id":12,"n":{"big":[18446744073709551616123]}}`, `{"id":12,"n":{"big":[18446744073709551616123]},"x":13}`},
		{`map: 'msg'`, `{"big":-9223372036854775809}`, `{"big":-9223372036854775809}`},
		{`map: '{"b": msg.big, "neg": msg.big < 0.0}'`, `{"big":-9223372036854775809}`, `{"b":-9223372036854776000,"neg":true}`},
	} {
		got, dead := runStage(t, tc.stage, tc.in)
		if len(got) != 1 || got[0] != tc.want || len(dead) != 0 {
			t.Errorf("%s on %s = %q (dead letters %v), want %s", tc.stage, tc.in, got, dead, tc.want)
		}
	}
}
