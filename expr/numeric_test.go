package expr

import (
	"reflect"
	"strings"
	"testing"
)

// evalJSON evaluates src on body with field-wise and with whole decoding and
// returns the JSON result, or "error: " and the message. It fails the test if
// the two disagree.
func evalJSON(t *testing.T, src, body string) string {
	t.Helper()
	var results [2]string
	for i, opts := range [][]Option{nil, {withFullDecode()}} {
		p, err := Compile(src, opts...)
		if err != nil {
			t.Fatalf("Compile(%#q) error = %v", src, err)
		}
		out, _, err := p.EvalJSON(&Input{Raw: []byte(body)})
		if err != nil {
			results[i] = "error: " + err.Error()
		} else {
			results[i] = string(out)
		}
	}
	if results[0] != results[1] {
		t.Errorf("Eval(%#q) on %s: field-wise decoding gives %s, whole decoding %s", src, body, results[0], results[1])
	}
	return results[0]
}

func TestNumbers(t *testing.T) {
	run := func(src, body, want string) {
		t.Helper()
		got := evalJSON(t, src, body)
		if got != want && !(strings.HasPrefix(want, "error: ") && strings.Contains(got, want[len("error: "):])) {
			t.Errorf("Eval(%#q) on %s = %s, want %s", src, body, got, want)
		}
	}
	const i15, d15 = `{"amount":15}`, `{"amount":15.5}`
	run(`msg.amount * 100.0`, i15, `1500`)
	run(`msg.amount * 100.0`, d15, `1550`)
	run(`100.0 * msg.amount`, i15, `1500`)
	run(`msg.amount + 1`, i15, `16`)
	run(`msg.amount + 1`, d15, `16.5`)
	run(`type(msg.amount + 1) == int`, i15, `true`)
	run(`type(msg.amount + 1) == double`, d15, `true`)
	run(`msg.amount - 0.5`, i15, `14.5`)
	run(`msg.amount / 2.0`, i15, `7.5`)
	run(`msg.amount / 2.0`, d15, `7.75`)
	run(`msg.amount / 2`, i15, `7`)
	run(`msg.amount / 2`, d15, `7.75`)
	run(`msg.amount > 100`, i15, `false`)
	run(`msg.amount > 15`, d15, `true`)
	run(`msg.amount >= 15.0`, i15, `true`)
	run(`msg.amount < 15.5`, i15, `true`)
	run(`msg.amount == 15.0`, i15, `true`)
	run(`msg.amount == 15.0`, d15, `false`)
	run(`msg.amount == 15`, i15, `true`)
	run(`msg.amount != 15`, d15, `true`)
	run(`int(msg.amount * 100.0)`, i15, `1500`)
	run(`int(msg.amount * 100.0)`, d15, `1550`)
	run(`msg.amount * 100.0`, `{"amount":1e3}`, `100000`)
	run(`msg.id % 3 == 0`, `{"id":9}`, `true`)
	run(`msg.id % 3`, `{"id":9.5}`, `error: no such overload`)
	run(`type(msg.id) == int`, `{"id":3}`, `true`)
	run(`type(msg.id) == double`, `{"id":3.0}`, `true`)
	run(`msg.id`, `{"id":9007199254740993}`, `9007199254740993`)
	run(`msg.id + 0`, `{"id":9007199254740993}`, `9007199254740993`)
	run(`msg.id == 9007199254740993`, `{"id":9007199254740993}`, `true`)
	run(`msg.id == 9007199254740992`, `{"id":9007199254740993}`, `false`)
	run(`msg.id`, `{"id":4611686018427387904}`, `4611686018427387904`)
	run(`msg.id`, `{"id":18446744073709551615}`, `18446744073709551615`)
	run(`type(msg.id) == uint`, `{"id":9223372036854775808}`, `true`)
	run(`msg.id * 2.0`, `{"id":9223372036854775808}`, `18446744073709552000`)
	run(`msg.id > 1`, `{"id":9223372036854775808}`, `true`)
	run(`msg.id + 1`, `{"id":9223372036854775807}`, `error: overflow`)
	run(`msg.id / 0`, `{"id":1}`, `error: division by zero`)
	run(`msg.id / 0.0`, `{"id":1}`, `error: NaN or infinity`)
	run(`1 + 2.5`, `{}`, `3.5`)
	run(`[msg.a, msg.b, msg.c]`, `{"a":-0.0,"b":1e21,"c":1e-7}`, `[0,1e+21,1e-7]`)
}

func TestGivenADoubleResultWhenTheNextStageReadsItThenArithmeticStillWorks(t *testing.T) {
	stage1, err := Compile(`{"x": msg.a * 1.0}`)
	if err != nil {
		t.Fatal(err)
	}
	stage2, err := Compile(`msg.x * 100.0`)
	if err != nil {
		t.Fatal(err)
	}
	body, decoded, err := stage1.EvalJSON(&Input{Raw: []byte(`{"a":15}`)})
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != `{"x":15}` {
		t.Errorf("stage 1 EvalJSON = %s, want {\"x\":15}", body)
	}
	if want := map[string]any{"x": int64(15)}; !reflect.DeepEqual(decoded, want) {
		t.Errorf("stage 1 decoded = %#v, want %#v", decoded, want)
	}
	for _, in := range []*Input{{Raw: body}, {Raw: body, Decoded: decoded}} {
		out, err := stage2.Eval(in)
		if err != nil || out.Value() != 1500.0 {
			t.Errorf("stage 2 Eval(%s, decoded %v) = %v, %v, want 1500.0", body, in.Decoded != nil, out, err)
		}
	}
}
