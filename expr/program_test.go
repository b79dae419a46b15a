package expr

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
)

func mustCompile(t testing.TB, src string, opts ...Option) *Program {
	t.Helper()
	p, err := Compile(src, opts...)
	if err != nil {
		t.Fatalf("Compile(%#q) error = %v", src, err)
	}
	return p
}

func TestEvalVariables(t *testing.T) {
	run := func(src string, in *Input, want any) {
		t.Helper()
		out, err := mustCompile(t, src).Eval(in)
		if err != nil || !reflect.DeepEqual(out.Value(), want) {
			t.Errorf("Eval(%#q) = %v, %v, want %v", src, out, err, want)
		}
	}
	run(`meta.topic`, &Input{Meta: map[string]string{"topic": "orders"}}, "orders")
	run(`meta.size()`, &Input{}, int64(0))
	run(`"topic" in meta`, &Input{}, false)
	run(`raw.size()`, &Input{Raw: []byte("not json")}, int64(8))
	run(`string(raw)`, &Input{Raw: []byte(`{"a":1}`)}, `{"a":1}`)
	run(`seq * 2`, &Input{Seq: 21}, int64(42))
	run(`base64.encode(b"hi")`, &Input{}, "aGk=")
	run(`"a,b".split(",")`, &Input{}, []string{"a", "b"})
	run(`math.greatest(1, 5)`, &Input{}, int64(5))
	run(`cel.bind(x, msg.a, x * x)`, &Input{Raw: []byte(`{"a":3}`)}, int64(9))
	run(`msg.?b.orValue(0)`, &Input{Raw: []byte(`{"a":3}`)}, int64(0))
}

func TestEvalInvalidBody(t *testing.T) {
	run := func(src, body string, wantErr bool) {
		t.Helper()
		for _, opts := range [][]Option{nil, {withFullDecode()}} {
			_, err := mustCompile(t, src, opts...).Eval(&Input{Raw: []byte(body)})
			var se *SyntaxError
			if errors.As(err, &se) != wantErr {
				t.Errorf("Eval(%#q) on %#q error = %v, want *SyntaxError %v", src, body, err, wantErr)
			}
		}
	}
	run(`msg.a == 1`, `{"a":1,"b":[1,}`, true)
	run(`msg.a == 1`, `{"a":1} trailing`, true)
	run(`msg.a == 1`, `{"a":1`, true)
	run(`msg.a == 1`, `{"b":"\x"}`, true)
	run(`msg.a == 1`, ``, true)
	run(`msg.a == 1`, `[1`, true)
	run(`msg == 1`, `{"a":1,}`, true)
	run(`seq == 0`, `not json`, false)
	run(`msg.a == 1`, `{"a":1}`, false)
}

func TestEvalDecoded(t *testing.T) {
	t.Run("whole decoding stores the body in Input.Decoded", func(t *testing.T) {
		in := &Input{Raw: []byte(`{"a":1}`)}
		if _, err := mustCompile(t, `msg`).Eval(in); err != nil {
			t.Fatal(err)
		}
		if want := map[string]any{"a": int64(1)}; !reflect.DeepEqual(in.Decoded, want) {
			t.Errorf("Input.Decoded = %#v, want %#v", in.Decoded, want)
		}
	})
	t.Run("field-wise decoding leaves Input.Decoded nil", func(t *testing.T) {
		in := &Input{Raw: []byte(`{"a":1}`)}
		if _, err := mustCompile(t, `msg.a`).Eval(in); err != nil {
			t.Fatal(err)
		}
		if in.Decoded != nil {
			t.Errorf("Input.Decoded = %#v, want nil", in.Decoded)
		}
	})
	t.Run("a given Input.Decoded is used instead of Raw", func(t *testing.T) {
		for _, src := range []string{`msg.a`, `msg["a"]`, `msg`} {
			in := &Input{Raw: []byte(`not json`), Decoded: map[string]any{"a": int64(2)}}
			if _, err := mustCompile(t, src).Eval(in); err != nil {
				t.Errorf("Eval(%#q) error = %v, want nil", src, err)
			}
		}
	})
}

func TestEvalBool(t *testing.T) {
	run := func(src string, want, wantErr bool) {
		t.Helper()
		got, err := mustCompile(t, src).EvalBool(&Input{Raw: []byte(`{"level":"error","n":1}`)})
		if got != want || (err != nil) != wantErr {
			t.Errorf("EvalBool(%#q) = %v, %v, want %v, error %v", src, got, err, want, wantErr)
		}
	}
	run(`msg.level == "error"`, true, false)
	run(`msg.level == "info"`, false, false)
	run(`msg.n`, false, true)
	run(`msg.missing`, false, true)
}

func TestUsesMsg(t *testing.T) {
	for src, want := range map[string]bool{`msg.a`: true, `msg`: true, `meta.a == "x"`: false, `seq > 1`: false} {
		if got := mustCompile(t, src).UsesMsg(); got != want {
			t.Errorf("Compile(%#q).UsesMsg() = %v, want %v", src, got, want)
		}
	}
	if p := mustCompile(t, "msg.a"); p.Source() != "msg.a" {
		t.Errorf("Source() = %q, want %q", p.Source(), "msg.a")
	}
}

func TestEvalConcurrent(t *testing.T) {
	filter := mustCompile(t, `msg.id % 3 == 0`)
	mapper := mustCompile(t, `{"id": msg.id, "cents": int(msg.amount * 100.0), "all": msg.tags}`)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				id := g*1000 + i
				raw := fmt.Appendf(nil, `{"id":%d,"amount":%d.5,"tags":["t%d"]}`, id, i, i)
				ok, err := filter.EvalBool(&Input{Raw: raw})
				if err != nil || ok != (id%3 == 0) {
					t.Errorf("filter on %s = %v, %v", raw, ok, err)
				}
				body, _, err := mapper.EvalJSON(&Input{Raw: raw})
				want := fmt.Sprintf(`{"all":["t%d"],"cents":%d,"id":%d}`, i, i*100+50, id)
				if err != nil || string(body) != want {
					t.Errorf("map on %s = %s, %v, want %s", raw, body, err, want)
				}
			}
		})
	}
	wg.Wait()
}
