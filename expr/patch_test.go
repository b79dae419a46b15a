package expr

import (
	"bytes"
	"maps"
	"strings"
	"testing"
)

// patchSlow is what PatchObject must equal: decode, set, delete, encode.
func patchSlow(body []byte, set []Field, del []string) ([]byte, bool) {
	v, err := DecodeJSON(body)
	if err != nil {
		return nil, false
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, false
	}
	obj = maps.Clone(obj)
	for _, f := range set {
		obj[f.Key] = f.Value
	}
	for _, k := range del {
		delete(obj, k)
	}
	out, err := EncodeJSON(obj)
	return out, err == nil
}

var patchBodies = []string{
	`{}`, ` { } `, `{"a":1}`, `{"b":1,"a":2}`, `{"a":1,"a":2}`, `{"a":{"a":1,"a":[]},"b":[{"d":1,"c":2},[],{}]}`,
	"{\n\t\"id\" : 12 , \"level\": \"error\", \"amount\": 1.50, \"x\": 1e3, \"y\": -0.0, \"z\": 0.1}",
	`{"big":-9223372036854775809,"u":18446744073709551615,"bb":[18446744073709551616123]}`,
	`{"s":"a\"b\\c\/d\n\t\u0001\u2028é😀","k\u00e9y":true,"n":null,"f":false}`,
	"{\"bad\":\"\xff\xfe\",\"\xc3\":1}", `{"html":"<a href='x'>&</a>"}`,
	`[]`, `"s"`, `1`, `null`, `{`, `{"a":}`, `{"a":1,}`, `{"a":1} x`, `{"a" 1}`, `{1:2}`, ``,
	strings.Repeat(`{"a":`, MaxDepth) + `1` + strings.Repeat(`}`, MaxDepth),
	strings.Repeat(`{"a":`, MaxDepth+1) + `1` + strings.Repeat(`}`, MaxDepth+1),
}

var patchEdits = []struct {
	set []Field
	del []string
}{
	{nil, nil},
	{[]Field{{"cents", int64(150)}}, nil},
	{[]Field{{"a", "new"}, {"zz", map[string]any{"y": 1.5, "x": []any{nil}}}}, nil},
	{[]Field{{"a", int64(1)}, {"a", int64(2)}}, []string{"b"}},
	{[]Field{{"a", true}}, []string{"a", "s", "missing"}},
}

func TestPatchObjectEncodesAsDecodingAndEncodingWould(t *testing.T) {
	for _, body := range patchBodies {
		for _, ed := range patchEdits {
			want, wantOK := patchSlow([]byte(body), ed.set, ed.del)
			got, ok := PatchObject([]byte(body), ed.set, ed.del)
			if ok != wantOK || !bytes.Equal(got, want) {
				t.Errorf("PatchObject(%q, %v, %v) = %q, %v, want %q, %v", body, ed.set, ed.del, got, ok, want, wantOK)
			}
		}
	}
}

func FuzzPatchObject(f *testing.F) {
	for _, b := range patchBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, ed := range patchEdits {
			want, wantOK := patchSlow(body, ed.set, ed.del)
			got, ok := PatchObject(body, ed.set, ed.del)
			if ok != wantOK || !bytes.Equal(got, want) {
				t.Fatalf("PatchObject(%q, %v, %v) = %q, %v, want %q, %v", body, ed.set, ed.del, got, ok, want, wantOK)
			}
		}
	})
}
