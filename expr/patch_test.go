package expr

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
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
	{[]Field{{Key: "cents", Value: int64(150)}}, nil},
	{[]Field{{Key: "a", Value: "new"}, {Key: "zz", Value: map[string]any{"y": 1.5, "x": []any{nil}}}}, nil},
	{[]Field{{Key: "a", Value: int64(1)}, {Key: "a", Value: int64(2)}}, []string{"b"}},
	{[]Field{{Key: "a", Value: true}}, []string{"a", "s", "missing"}},
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

// withRaw returns set with each value pre-encoded by EncodeMember.
func withRaw(t testing.TB, set []Field) []Field {
	out := make([]Field, len(set))
	for i, f := range set {
		raw, err := EncodeMember(f.Value)
		if err != nil {
			t.Fatalf("EncodeMember(%#v): %v", f.Value, err)
		}
		out[i] = Field{Key: f.Key, Raw: raw}
	}
	return out
}

func TestPatchObjectRawWritesWhatValueWould(t *testing.T) {
	for _, body := range patchBodies {
		for _, ed := range patchEdits {
			want, wantOK := patchSlow([]byte(body), ed.set, ed.del)
			got, ok := PatchObject([]byte(body), withRaw(t, ed.set), ed.del)
			if ok != wantOK || !bytes.Equal(got, want) {
				t.Errorf("PatchObject(%q, raw %v, %v) = %q, %v, want %q, %v", body, ed.set, ed.del, got, ok, want, wantOK)
			}
		}
	}
}

func TestEncodeMemberRefusesWhatAMemberWouldNot(t *testing.T) {
	var deep any = int64(1)
	for range MaxDepth {
		deep = []any{deep}
	}
	if _, err := EncodeJSON(deep); err != nil {
		t.Fatalf("EncodeJSON(%d deep) = %v, want it encoded", MaxDepth, err)
	}
	if _, err := EncodeMember(deep); !errors.Is(err, ErrTooDeep) {
		t.Errorf("EncodeMember(%d deep) error = %v, want ErrTooDeep", MaxDepth, err)
	}
	if _, ok := PatchObject([]byte(`{}`), []Field{{Key: "a", Value: deep}}, nil); ok {
		t.Errorf("PatchObject with a %d-deep value ok, want refused as EncodeMember refuses it", MaxDepth)
	}
	b, err := EncodeMember(map[string]any{"b": []any{"é", int64(1) << 60}})
	if want := `{"b":["é",1152921504606846976]}`; err != nil || string(b) != want {
		t.Errorf("EncodeMember = %s, %v, want %s", b, err, want)
	}
}

// checkObject checks ScanObject(body) against the scanning functions it
// replaces: Patch equals PatchObject for every edit, and reading fields
// from it equals decodeFields on the body.
func checkObject(t *testing.T, body []byte) {
	t.Helper()
	o := ScanObject(body)
	fields := []string{"a", "b", "s", "id", "level", "missing", "k\u00e9y"}
	if o == nil {
		for _, ed := range patchEdits {
			if got, ok := PatchObject(body, ed.set, ed.del); ok {
				t.Fatalf("ScanObject(%q) = nil, but PatchObject patched it to %q", body, got)
			}
		}
		if isObject, err := decodeFields(body, fields, map[string]any{}); isObject && err == nil {
			t.Fatalf("ScanObject(%q) = nil, but decodeFields read it", body)
		}
		return
	}
	for _, ed := range patchEdits {
		want, wantOK := PatchObject(body, ed.set, ed.del)
		got, ok := o.Patch(ed.set, ed.del)
		if ok != wantOK || !bytes.Equal(got, want) {
			t.Fatalf("ScanObject(%q).Patch(%v, %v) = %q, %v, want %q, %v", body, ed.set, ed.del, got, ok, want, wantOK)
		}
	}
	want, got := map[string]any{}, map[string]any{}
	isObject, wantErr := decodeFields(body, fields, want)
	gotErr := o.decodeFields(fields, got)
	if !isObject || fmt.Sprint(gotErr) != fmt.Sprint(wantErr) || wantErr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("ScanObject(%q) fields = %v, %v, want %v, %v (object %v)", body, got, gotErr, want, wantErr, isObject)
	}
}

func TestObjectPatchesAndReadsAsTheBodyScansDo(t *testing.T) {
	bodies := append(slices.Clone(patchBodies),
		`{"a":1e400,"b":2}`, `{"a":1e400,"a":1}`, `{"b":[1,2,{"c":3}],"a":{"x":[],"y":{}},"s":"plain"}`,
		`{"b":-0,"a":-12,"s":123456789012345678,"id":1234567890123456789}`, `{"a":{"b":1,"b":2}}`, `{"a":{"b" :1}}`,
		`{"a":[1 ,2]}`, `{"a":[ 1]}`, `{"a":[0.1,1.25,-0.5,0.0,1.50,0.000001,0.0000001,123456789012.345,1234567890123.456,1e2,1E2,1.5e1]}`,
		`{"a":0.1,"b":-0.5,"c":0.0,"d":1.50,"e":0.000001,"f":0.0000001,"g":123456789012.345,"h":1234567890123.456,"i":1.5e1,"j":-0.0}`,
		`{"a":99999999999999.9,"b":999999999999999.9,"c":0.1234567890123456,"d":10.01}`, `{"a":{ "b":1}}`, `{"a":{"b": 1}}`, `{"a":{"b":1 }}`, `{"a":"\u0041"}`, `{"a":"é"}`)
	for _, b := range bodies {
		checkObject(t, []byte(b))
	}
}

func TestScanObjectCopiesWhatIsAlreadyEncoded(t *testing.T) {
	body := `{"b":[1,"x",{"c":true,"d":null}],"a":{"x":[],"y":{}},"s":"plain","n":-12,"f":1.5,"w":{"z":1,"y":2},"e":1e2,"z":1.50}`
	o := ScanObject([]byte(body))
	if o == nil {
		t.Fatalf("ScanObject(%s) = nil", body)
	}
	want := map[string]bool{"b": true, "a": true, "s": true, "n": true, "f": true, "w": false, "e": false, "z": false}
	for _, m := range o.members {
		if k := o.key(&m); m.canon != want[k] {
			t.Errorf("member %s canonical = %v, want %v", k, m.canon, want[k])
		}
	}
}

func FuzzScanObject(f *testing.F) {
	for _, b := range patchBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkObject(t, body)
	})
}

// An evaluation that reads fields of a large object body leaves its scan in
// Input.Object, and a later evaluation given that scan, even through
// Decoded (a message's cached form), reads the same values from it.
func TestEvalLeavesItsScanForTheNextEvaluation(t *testing.T) {
	body := []byte(`{"level":"error","amount":1.5,"note":"` + strings.Repeat("n", minKeptScan) + `"}`)
	in := &Input{Raw: body}
	if ok, err := mustCompile(t, `msg.level == "error"`).EvalBool(in); err != nil || !ok {
		t.Fatalf("EvalBool = %v, %v, want true", ok, err)
	}
	if in.Object == nil || in.Decoded != nil {
		t.Fatalf("after a field read: Object %v, Decoded %v; want the scan and no decoded body", in.Object, in.Decoded)
	}
	next := &Input{Raw: body, Decoded: in.Object}
	v, err := mustCompile(t, `int(msg.amount * 100.0)`).EvalNative(next)
	if err != nil || v != int64(150) || next.Object != in.Object || next.Decoded != nil {
		t.Errorf("EvalNative on the scan = %v, %v (Object %p, Decoded %v), want 150 from scan %p", v, err, next.Object, next.Decoded, in.Object)
	}
	small := &Input{Raw: []byte(`{"level":"error"}`)}
	if _, err := mustCompile(t, `msg.level == "error"`).EvalBool(small); err != nil || small.Object != nil {
		t.Errorf("small body: Object %v, err %v; want no scan kept (cheaper to scan again)", small.Object, err)
	}
}
