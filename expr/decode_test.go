package expr

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeJSON(t *testing.T) {
	run := func(in string, want any) {
		t.Helper()
		got, err := DecodeJSON([]byte(in))
		if err != nil {
			t.Errorf("DecodeJSON(%#q) error = %v, want %#v", in, err, want)
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("DecodeJSON(%#q) = %#v, want %#v", in, got, want)
		}
	}
	run(`0`, int64(0))
	run(`3`, int64(3))
	run(`-7`, int64(-7))
	run(`-0`, int64(0))
	run(`999999999999999999`, int64(999999999999999999))
	run(`9007199254740993`, int64(9007199254740993))
	run(`4611686018427387904`, int64(1<<62))
	run(`9223372036854775807`, int64(math.MaxInt64))
	run(`-9223372036854775808`, int64(math.MinInt64))
	run(`9223372036854775808`, uint64(1<<63))
	run(`18446744073709551615`, uint64(math.MaxUint64))
	run(`18446744073709551616`, BigInt("18446744073709551616"))
	run(`-9223372036854775809`, BigInt("-9223372036854775809"))
	run(`15.5`, 15.5)
	run(`15.0`, 15.0)
	run(`1e3`, 1000.0)
	run(`1E+3`, 1000.0)
	run(`-2.5e-3`, -0.0025)
	run(`1e-400`, 0.0)
	run(`"plain"`, "plain")
	run(`"esc \" \\ \/ \b \f \n \r \t"`, "esc \" \\ / \b \f \n \r \t")
	run(`"\u00e9\u20AC"`, "é€")
	run(`"\ud83d\ude00"`, "😀")
	run(`"\ud83d"`, "\ufffd")
	run(`"\ude00\ud83d x"`, "\ufffd\ufffd x")
	run(`"\ud83d\u0041"`, "\ufffdA")
	run("\"bad \xff utf8\"", "bad \ufffd utf8")
	run("\"bad \xe2\x82 cut\"", "bad \ufffd\ufffd cut")
	run(`"naïve ☃"`, "naïve ☃")
	run(`true`, true)
	run(`false`, false)
	run(`null`, nil)
	run(" \t\r\n[ 1 , 2.5 , \"x\" , null ] \n", []any{int64(1), 2.5, "x", nil})
	run(`[]`, []any{})
	run(`{}`, map[string]any{})
	run(`{"a":1,"a":2}`, map[string]any{"a": int64(2)})
	run(`{"a":{"b":[{"c":true}]},"d":"e"}`, map[string]any{"a": map[string]any{"b": []any{map[string]any{"c": true}}}, "d": "e"})
	run(`{"k\u00e9y":1}`, map[string]any{"kéy": int64(1)})
}

func TestDecodeJSONErrors(t *testing.T) {
	run := func(in string) {
		t.Helper()
		got, err := DecodeJSON([]byte(in))
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("DecodeJSON(%#q) = %#v, %v, want *SyntaxError", in, got, err)
		}
		if json.Valid([]byte(in)) {
			t.Errorf("json.Valid(%#q) = true; the case is not invalid JSON", in)
		}
	}
	for _, in := range []string{
		``, ` `, `x`, `01`, `-`, `1.`, `.5`, `+1`, `1e`, `1e+`, `0x10`, `NaN`, `Infinity`,
		`tru`, `nul`, `falsy`, `"abc`, `"a` + "\n" + `b"`, `"\x"`, `"\u12"`, `"\u12g4"`,
		`[1,]`, `[1 2]`, `[`, `]`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{a:1}`, `{"a":1`, `{,}`,
		`1 2`, `{} x`, `"\ud83d\u"`, "\xef\xbb\xbf{}",
	} {
		run(in)
	}
}

func TestDecodeJSONNumberRange(t *testing.T) {
	for _, in := range []string{`1e400`, `-1e400`, `[1e309]`} {
		_, err := DecodeJSON([]byte(in))
		if !errors.Is(err, ErrNumberRange) {
			t.Errorf("DecodeJSON(%#q) error = %v, want ErrNumberRange", in, err)
		}
	}
}

func TestDecodeJSONDepth(t *testing.T) {
	nested := func(n int, open, close string) []byte {
		return []byte(strings.Repeat(open, n) + strings.Repeat(close, n))
	}
	run := func(name string, b []byte, wantDeep bool) {
		t.Helper()
		_, err := DecodeJSON(b)
		if got := errors.Is(err, ErrTooDeep); got != wantDeep {
			t.Errorf("DecodeJSON(%s) error = %v, want ErrTooDeep %v", name, err, wantDeep)
		}
		// One level deeper inside an object, skipped as DecodeJSON would fail it.
		wrapped := append(append([]byte(`{"skipped":`), b...), '}')
		_, wantErr := DecodeJSON(wrapped)
		_, err = decodeFields(wrapped, []string{"other"}, map[string]any{})
		if got, want := errors.Is(err, ErrTooDeep), errors.Is(wantErr, ErrTooDeep); got != want {
			t.Errorf("decodeFields(%s in a skipped field) error = %v, want ErrTooDeep %v", name, err, want)
		}
	}
	run("1000 arrays", nested(MaxDepth, "[", "]"), false)
	run("999 objects", nested(MaxDepth-1, `{"a":`, "}"), false)
	run("1001 arrays", nested(MaxDepth+1, "[", "]"), true)
	run("10000 arrays", nested(10000, "[", "]"), true)
	run("10000 objects", nested(10000, `{"a":`, "}"), true)
	run("unclosed 100000 arrays", []byte(strings.Repeat("[", 100000)), true)
}

func TestDecodeJSONMatchesEncodingJSON(t *testing.T) {
	raw, err := readMessage()
	if err != nil {
		t.Fatal(err)
	}
	assertSameAsEncodingJSON(t, raw)
}

// assertSameAsEncodingJSON checks that DecodeJSON and encoding/json with
// UseNumber agree on valid input b, numbers compared by the package rules.
func assertSameAsEncodingJSON(t *testing.T, b []byte) {
	t.Helper()
	got, err := DecodeJSON(b)
	if err != nil {
		t.Fatalf("DecodeJSON(%#q) error = %v", b, err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var want any
	if err := dec.Decode(&want); err != nil {
		t.Fatalf("encoding/json decode of %#q: %v", b, err)
	}
	if path, ok := sameJSON(got, want); !ok {
		t.Errorf("DecodeJSON(%#q) differs from encoding/json at %s: %#v vs %#v", b, path, got, want)
	}
}

// sameJSON compares a DecodeJSON value with an encoding/json UseNumber value.
func sameJSON(got, want any) (string, bool) {
	switch w := want.(type) {
	case json.Number:
		switch g := got.(type) {
		case int64:
			return "", w.String() == formatInt(g) || !strings.ContainsAny(w.String(), ".eE") && sameInt(w, g)
		case uint64:
			n, err := parseUintNumber(w)
			return "", err == nil && n == g
		case float64:
			f, err := w.Float64()
			return "", err == nil && f == g
		case BigInt:
			return "", w.String() == string(g)
		}
		return "", false
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(w) {
			return "", false
		}
		for k, wv := range w {
			if p, ok := sameJSON(g[k], wv); !ok {
				return "." + k + p, false
			}
		}
		return "", true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return "", false
		}
		for i := range w {
			if p, ok := sameJSON(g[i], w[i]); !ok {
				return "[" + formatInt(int64(i)) + "]" + p, false
			}
		}
		return "", true
	}
	return "", reflect.DeepEqual(got, want)
}
