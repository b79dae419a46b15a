package expr

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// FuzzDecodeJSON checks that DecodeJSON never panics, accepts exactly what
// encoding/json accepts (less what exceeds MaxDepth or the double range),
// agrees with encoding/json on the values, re-encodes stably through EncodeJSON,
// and that decodeFields agrees with it on every top-level field.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{
		`{"id":1,"level":"error","amount":15.5,"tags":["a","b"],"user":{"n":null}}`,
		`[1,-0,1e3,9007199254740993,18446744073709551615,18446744073709551616]`,
		`"\u00e9\ud83d\ude00\ud83d"`, "\"\xff\"", `{"a":1,"a":2}`, `{"a":[{"b":{}}]} `,
		`{"a" : 1 ,`, `1e400`, `tru`, `[[[[[[]]]]]]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := DecodeJSON(b)
		valid := json.Valid(b)
		switch {
		case errors.Is(err, ErrTooDeep), errors.Is(err, ErrNumberRange):
			return
		case err == nil && !valid:
			t.Fatalf("DecodeJSON(%#q) = %#v, want error: encoding/json says invalid", b, got)
		case err != nil && valid:
			t.Fatalf("DecodeJSON(%#q) error = %v, want success: encoding/json says valid", b, err)
		case err != nil:
			return
		}
		assertSameAsEncodingJSON(t, b)

		enc, err := EncodeJSON(got)
		if err != nil {
			t.Fatalf("EncodeJSON(DecodeJSON(%#q)) error = %v", b, err)
		}
		again, err := DecodeJSON(enc)
		if err != nil {
			t.Fatalf("DecodeJSON(%#q) error = %v; it is EncodeJSON output", enc, err)
		}
		if enc2, err := EncodeJSON(again); string(enc2) != string(enc) {
			t.Fatalf("EncodeJSON(DecodeJSON(%#q)) = %#q, %v, want the same bytes", enc, enc2, err)
		}

		obj, isObject := got.(map[string]any)
		if !isObject {
			return
		}
		fields := make([]string, 0, 2)
		for k := range obj {
			fields = append(fields, k, k+"-missing")
			break
		}
		out := map[string]any{}
		ok, err := decodeFields(b, fields, out)
		if !ok || err != nil {
			t.Fatalf("decodeFields(%#q, %q) = %v, %v, want true, nil", b, fields, ok, err)
		}
		for _, k := range fields {
			want, wantOK := obj[k]
			v, vOK := out[k]
			if vOK != wantOK || !reflect.DeepEqual(v, want) {
				t.Fatalf("decodeFields(%#q)[%q] = %#v, %v, want %#v, %v", b, k, v, vOK, want, wantOK)
			}
		}
	})
}
