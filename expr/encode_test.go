package expr

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
)

func TestEncodeJSON(t *testing.T) {
	run := func(v any, want string) {
		t.Helper()
		got, err := EncodeJSON(v)
		if err != nil || string(got) != want {
			t.Errorf("EncodeJSON(%#v) = %s, %v, want %s", v, got, err, want)
		}
	}
	run(nil, `null`)
	run(int64(-7), `-7`)
	run(int64(math.MaxInt64), `9223372036854775807`)
	run(uint64(math.MaxUint64), `18446744073709551615`)
	run(15.0, `15`)
	run(15.5, `15.5`)
	run(math.Copysign(0, -1), `0`)
	run(1e21, `1e+21`)
	run(1e20, `100000000000000000000`)
	run(1e-7, `1e-7`)
	run(0.000001, `0.000001`)
	run("q\"b\\n\n\t\x01</>&", `"q\"b\\n\n\t\u0001</>&"`)
	run("\u2028\u2029é😀", `"\u2028\u2029é😀"`)
	run("bad\xffutf8", "\"bad\ufffdutf8\"")
	run([]byte("hi"), `"aGk="`)
	run(map[string]any{"b": []any{true, nil}, "a": map[string]any{}, "c": []any{}}, `{"a":{},"b":[true,null],"c":[]}`)
	run(map[string]string{"z": "1", "y": "2"}, `{"y":"2","z":"1"}`)
	run(types.String("s"), `"s"`)
	run(types.Int(3), `3`)
	run(types.Uint(3), `3`)
	run(types.Double(2.5), `2.5`)
	run(types.NullValue, `null`)
	run(types.Bytes("hi"), `"aGk="`)
	run(types.Timestamp{Time: time.Date(2024, 5, 17, 12, 0, 0, 500, time.UTC)}, `"2024-05-17T12:00:00.0000005Z"`)
	run(types.Duration{Duration: 1500 * time.Millisecond}, `"1.5s"`)
	run(time.Duration(90*time.Second), `"90s"`)
	run(types.OptionalOf(types.Int(1)), `1`)
	run(types.OptionalNone, `null`)
	run(map[ref.Val]ref.Val{types.Int(2): types.True, types.Int(10): types.False, types.String("a"): types.NullValue},
		`{"10":false,"2":true,"a":null}`)
	run(types.DefaultTypeAdapter.NativeToValue([]any{int64(1), "x", map[string]any{"k": 1.5}}), `[1,"x",{"k":1.5}]`)
}

func TestEncodeJSONErrors(t *testing.T) {
	run := func(v any, want string) {
		t.Helper()
		_, err := EncodeJSON(v)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("EncodeJSON(%#v) error = %v, want one containing %q", v, err, want)
		}
	}
	run(math.NaN(), "NaN")
	run(types.Double(math.Inf(1)), "NaN or infinity")
	run([]any{math.Inf(-1)}, "NaN or infinity")
	run(struct{}{}, "unsupported type")
	run(map[ref.Val]ref.Val{types.Double(1.5): types.True}, "unsupported map key type double")
	run(types.NewErr("boom"), "boom")
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	if _, err := EncodeJSON(cyclic); !errors.Is(err, ErrTooDeep) {
		t.Errorf("EncodeJSON(cyclic map) error = %v, want ErrTooDeep", err)
	}
}

func TestEvalJSONResults(t *testing.T) {
	run := func(src, want string) {
		t.Helper()
		if got := evalJSON(t, src, `{"a":1}`); got != want {
			t.Errorf("EvalJSON(%#q) = %s, want %s", src, got, want)
		}
	}
	run(`{"z": 1, "a": [msg.a, 2.0, "s", b"\x00", null, true], "m": {1: "one", "k": {}}}`,
		`{"a":[1,2,"s","AA==",null,true],"m":{"1":"one","k":{}},"z":1}`)
	run(`timestamp("2024-01-02T03:04:05Z")`, `"2024-01-02T03:04:05Z"`)
	run(`duration("1m30s")`, `"90s"`)
	run(`[1, 2] + [3]`, `[1,2,3]`)
	run(`msg`, `{"a":1}`)
	run(`{"all": msg, "n": msg.a}`, `{"all":{"a":1},"n":1}`)
	run(`0.0 / 0.0`, `error: encoding result: cannot encode NaN or infinity as JSON`)
}
