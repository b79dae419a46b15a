package expr

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/google/cel-go/common/types/ref"
)

const (
	benchFilter = `msg.level == "error"`
	benchMap    = `{"id": msg.id, "cents": int(msg.amount * 100.0)}`
)

func benchMessage(b *testing.B) []byte {
	b.Helper()
	raw, err := os.ReadFile("testdata/message.json")
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

func mustCompileB(b *testing.B, src string, opts ...Option) *Program {
	b.Helper()
	p, err := Compile(src, opts...)
	if err != nil {
		b.Fatal(err)
	}
	return p
}

func BenchmarkDecodeJSON(b *testing.B) {
	raw := benchMessage(b)
	b.Run("expr", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			if _, err := DecodeJSON(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			var v any
			if err := json.Unmarshal(raw, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("validate_only", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			d := getDecoder(raw)
			if err := d.skip(); err != nil {
				b.Fatal(err)
			}
			putDecoder(d)
		}
	})
	b.Run("encoding_json_valid", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			if !json.Valid(raw) {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("fields", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		fields, out := []string{"id", "amount"}, map[string]any{}
		for b.Loop() {
			if _, err := decodeFields(raw, fields, out); err != nil {
				b.Fatal(err)
			}
			clear(out)
		}
	})
}

func BenchmarkEncodeJSON(b *testing.B) {
	v, err := DecodeJSON(benchMessage(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("expr", func(b *testing.B) {
		for b.Loop() {
			if _, err := EncodeJSON(v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(v); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkFilter compares the ways to run a filter on a 1 KiB message:
// baseline is encoding/json into map[string]any followed by CEL.
func BenchmarkFilter(b *testing.B) {
	raw := benchMessage(b)
	b.Run("baseline", func(b *testing.B) {
		p := mustCompileB(b, benchFilter)
		for b.Loop() {
			var m map[string]any
			if err := json.Unmarshal(raw, &m); err != nil {
				b.Fatal(err)
			}
			out, _, err := p.prg.Eval(map[string]any{"msg": m})
			if err != nil || out != ref.Val(trueVal) {
				b.Fatal(out, err)
			}
		}
	})
	for _, tc := range []struct {
		name string
		opts []Option
	}{{"full", []Option{withFullDecode()}}, {"fields", nil}} {
		b.Run(tc.name, func(b *testing.B) {
			p := mustCompileB(b, benchFilter, tc.opts...)
			for b.Loop() {
				ok, err := p.EvalBool(&Input{Raw: raw})
				if err != nil || !ok {
					b.Fatal(ok, err)
				}
			}
		})
	}
	b.Run("decoded", func(b *testing.B) {
		p := mustCompileB(b, benchFilter)
		in := &Input{Raw: raw}
		in.Decoded, _ = DecodeJSON(raw)
		for b.Loop() {
			if ok, err := p.EvalBool(in); err != nil || !ok {
				b.Fatal(ok, err)
			}
		}
	})
}

// BenchmarkMap compares the ways to run a map on a 1 KiB message: baseline is
// encoding/json into map[string]any, CEL, and json.Marshal of the result.
func BenchmarkMap(b *testing.B) {
	raw := benchMessage(b)
	b.Run("baseline", func(b *testing.B) {
		p := mustCompileB(b, benchMap)
		for b.Loop() {
			var m map[string]any
			if err := json.Unmarshal(raw, &m); err != nil {
				b.Fatal(err)
			}
			out, _, err := p.prg.Eval(map[string]any{"msg": m})
			if err != nil {
				b.Fatal(err)
			}
			native, err := out.ConvertToNative(mapStringAny)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := json.Marshal(native); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, tc := range []struct {
		name string
		opts []Option
	}{{"full", []Option{withFullDecode()}}, {"fields", nil}} {
		b.Run(tc.name, func(b *testing.B) {
			p := mustCompileB(b, benchMap, tc.opts...)
			for b.Loop() {
				if _, _, err := p.EvalJSON(&Input{Raw: raw}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
