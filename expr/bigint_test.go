package expr

import (
	"encoding/json"
	"testing"
)

// CEL reads a BigInt as the nearest double, wherever it is nested; the
// body passes through EvalJSON unchanged when the expression returns it
// whole.
func TestBigIntReadsAsDouble(t *testing.T) {
	body := []byte(`{"big":-9223372036854775809,"l":[18446744073709551616],"o":{"b":18446744073709551617}}`)
	for src, want := range map[string]string{
		`type(msg.big) == double && msg.big < -9.2e18`: `true`,
		`msg.l[0] > 1.8e19 && msg.o.b + 1.0 > 1.8e19`:  `true`,
		`msg.l.map(x, x * 2.0)[0] > 3.6e19`:            `true`,
		`msg`:                                          string(body),
		`msg.o`:                                        `{"b":18446744073709551617}`,
	} {
		p, err := Compile(src)
		if err != nil {
			t.Fatalf("Compile(%#q) = %v", src, err)
		}
		got, _, err := p.EvalJSON(&Input{Raw: body})
		if err != nil || string(got) != want {
			t.Errorf("EvalJSON(%#q) = %s, %v; want %s", src, got, err, want)
		}
	}
}

func TestBigIntMarshalsAsItsText(t *testing.T) {
	b, err := json.Marshal(map[string]any{"n": BigInt("-9223372036854775809")})
	if err != nil || string(b) != `{"n":-9223372036854775809}` {
		t.Errorf("json.Marshal = %s, %v", b, err)
	}
}
