package expr

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
)

// ErrNotFinite is returned for a NaN or infinite double, which JSON cannot hold.
var ErrNotFinite = errors.New("cannot encode NaN or infinity as JSON")

// EncodeJSON encodes v as compact JSON. v may be a CEL value (ref.Val) or a
// value as DecodeJSON returns it, nested in any mix; other Go types accepted
// are int, []byte, map[string]string, map[ref.Val]ref.Val, time.Time and
// time.Duration. The package doc lists the encoding of each CEL type. Object
// keys are sorted in byte order (CEL maps keep no insertion order), so equal
// values always encode to equal bytes. Strings are written as UTF-8 without
// HTML escaping; invalid UTF-8 becomes U+FFFD.
func EncodeJSON(v any) ([]byte, error) {
	e := encoderPool.Get().(*encoder)
	defer e.release()
	if err := e.native(v); err != nil {
		return nil, err
	}
	return slices.Clone(e.buf), nil
}

// encoder writes JSON to buf. Its scratch stacks hold the keys of the objects
// being written while they are sorted.
type encoder struct {
	buf   []byte
	keys  []celKey
	strs  []string
	depth int
	// limit, if positive, is the length past which buf is refused with
	// ErrValueTooLarge; EvalJSON sets it to MaxValueSize.
	limit int
}

// celKey is a CEL map key with its JSON spelling and, if known, its value.
type celKey struct {
	s string
	k ref.Val
	v ref.Val
}

// maxPooledBuffer is the largest buffer an encoder keeps in the pool.
const maxPooledBuffer = 1 << 20

var encoderPool = sync.Pool{New: func() any { return new(encoder) }}

func (e *encoder) release() {
	e.buf, e.depth, e.limit = e.buf[:0], 0, 0
	if cap(e.buf) > maxPooledBuffer {
		e.buf = nil // do not keep one large result's buffer for ever
	}
	clear(e.keys[:cap(e.keys)])
	clear(e.strs[:cap(e.strs)])
	e.keys, e.strs = e.keys[:0], e.strs[:0]
	encoderPool.Put(e)
}

func (e *encoder) enter() error {
	if e.depth++; e.depth > MaxDepth {
		return fmt.Errorf("encoding JSON: %w", ErrTooDeep)
	}
	return nil
}

// native encodes a Go value, handing CEL values to cel.
func (e *encoder) native(v any) error {
	if err := e.full(); err != nil {
		return err
	}
	switch v := v.(type) {
	case nil:
		e.buf = append(e.buf, "null"...)
	case string:
		e.str(v)
	case int64:
		e.buf = strconv.AppendInt(e.buf, v, 10)
	case float64:
		return e.double(v)
	case bool:
		e.buf = strconv.AppendBool(e.buf, v)
	case map[string]any:
		return e.stringMap(v)
	case []any:
		if err := e.enter(); err != nil {
			return err
		}
		e.buf = append(e.buf, '[')
		for i, el := range v {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			if err := e.native(el); err != nil {
				return err
			}
		}
		e.buf = append(e.buf, ']')
		e.depth--
	case uint64:
		e.buf = strconv.AppendUint(e.buf, v, 10)
	case BigInt:
		e.buf = append(e.buf, v...)
	case int:
		e.buf = strconv.AppendInt(e.buf, int64(v), 10)
	case []byte:
		e.bytes(v)
	case map[string]string:
		keys := e.sortedKeys(len(v), func(add func(string)) {
			for k := range v {
				add(k)
			}
		})
		e.buf = append(e.buf, '{')
		for i, k := range keys {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			e.str(k)
			e.buf = append(e.buf, ':')
			e.str(v[k])
		}
		e.buf = append(e.buf, '}')
		e.strs = e.strs[:len(e.strs)-len(keys)]
	case time.Time:
		e.timestamp(v)
	case time.Duration:
		e.duration(v)
	case map[ref.Val]ref.Val:
		return e.cel(types.DefaultTypeAdapter.NativeToValue(v))
	case ref.Val:
		return e.cel(v)
	default:
		return fmt.Errorf("encoding JSON: unsupported type %T", v)
	}
	return nil
}

func (e *encoder) stringMap(m map[string]any) error {
	if err := e.enter(); err != nil {
		return err
	}
	keys := e.sortedKeys(len(m), func(add func(string)) {
		for k := range m {
			add(k)
		}
	})
	e.buf = append(e.buf, '{')
	for i, k := range keys {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		e.str(k)
		e.buf = append(e.buf, ':')
		if err := e.native(m[k]); err != nil {
			return err
		}
	}
	e.buf = append(e.buf, '}')
	e.strs = e.strs[:len(e.strs)-len(keys)]
	e.depth--
	return nil
}

// sortedKeys pushes n keys onto the string stack and returns them sorted; the
// caller pops them when done.
func (e *encoder) sortedKeys(n int, each func(add func(string))) []string {
	start := len(e.strs)
	e.strs = slices.Grow(e.strs, n)
	each(func(k string) { e.strs = append(e.strs, k) })
	keys := e.strs[start:]
	slices.Sort(keys)
	return keys
}

// cel encodes a CEL value.
func (e *encoder) cel(v ref.Val) error {
	if err := e.full(); err != nil {
		return err
	}
	switch v := v.(type) {
	case types.String:
		e.str(string(v))
	case types.Int:
		e.buf = strconv.AppendInt(e.buf, int64(v), 10)
	case types.Double:
		return e.double(float64(v))
	case types.Bool:
		e.buf = strconv.AppendBool(e.buf, bool(v))
	case types.Null:
		e.buf = append(e.buf, "null"...)
	case types.Uint:
		e.buf = strconv.AppendUint(e.buf, uint64(v), 10)
	case types.Bytes:
		e.bytes(v)
	case types.Timestamp:
		e.timestamp(v.Time)
	case types.Duration:
		e.duration(v.Duration)
	case *types.Optional:
		if !v.HasValue() {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		return e.cel(v.GetValue())
	case *types.Err:
		return v
	case traits.Mapper:
		if m, ok := v.Value().(map[string]any); ok {
			return e.stringMap(m)
		}
		return e.celMap(v)
	case traits.Lister:
		if l, ok := v.Value().([]any); ok {
			return e.native(l)
		}
		return e.celList(v)
	default:
		return fmt.Errorf("encoding JSON: unsupported CEL type %s", v.Type().TypeName())
	}
	return nil
}

func (e *encoder) celList(l traits.Lister) error {
	if err := e.enter(); err != nil {
		return err
	}
	e.buf = append(e.buf, '[')
	for i, it := 0, l.Iterator(); it.HasNext() == types.True; i++ {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		if err := e.cel(it.Next()); err != nil {
			return err
		}
	}
	e.buf = append(e.buf, ']')
	e.depth--
	return nil
}

func (e *encoder) celMap(m traits.Mapper) error {
	if err := e.enter(); err != nil {
		return err
	}
	start := len(e.keys)
	if native, ok := m.Value().(map[ref.Val]ref.Val); ok {
		// A CEL map literal: range it directly rather than through an Iterator.
		for k, v := range native {
			s, err := jsonKey(k)
			if err != nil {
				return err
			}
			e.keys = append(e.keys, celKey{s, k, v})
		}
	} else {
		for it := m.Iterator(); it.HasNext() == types.True; {
			k := it.Next()
			s, err := jsonKey(k)
			if err != nil {
				return err
			}
			e.keys = append(e.keys, celKey{s, k, nil})
		}
	}
	keys := e.keys[start:]
	slices.SortFunc(keys, func(a, b celKey) int { return strings.Compare(a.s, b.s) })
	e.buf = append(e.buf, '{')
	for i, k := range keys {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		e.str(k.s)
		e.buf = append(e.buf, ':')
		v := k.v
		if v == nil {
			v = m.Get(k.k)
		}
		if err := e.cel(v); err != nil {
			return err
		}
	}
	e.buf = append(e.buf, '}')
	clear(keys)
	e.keys = e.keys[:start]
	e.depth--
	return nil
}

// jsonKey spells a CEL map key as a JSON object key.
func jsonKey(k ref.Val) (string, error) {
	switch k := k.(type) {
	case types.String:
		return string(k), nil
	case types.Int:
		return strconv.FormatInt(int64(k), 10), nil
	case types.Uint:
		return strconv.FormatUint(uint64(k), 10), nil
	case types.Bool:
		return strconv.FormatBool(bool(k)), nil
	}
	return "", fmt.Errorf("encoding JSON: unsupported map key type %s", k.Type().TypeName())
}

// double writes f as encoding/json does, the shortest decimal that reads
// back as f, in exponent form only below 1e-6 or from 1e21; but -0 as 0.
func (e *encoder) double(f float64) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return ErrNotFinite
	}
	if f == 0 {
		f = 0 // -0 would decode as the int 0 and re-encode as 0
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	e.buf = strconv.AppendFloat(e.buf, f, format, -1, 64)
	if format == 'e' {
		// Shorten e-09 to e-9, as encoding/json does.
		n := len(e.buf)
		if n >= 4 && e.buf[n-4] == 'e' && e.buf[n-3] == '-' && e.buf[n-2] == '0' {
			e.buf[n-2] = e.buf[n-1]
			e.buf = e.buf[:n-1]
		}
	}
	return nil
}

func (e *encoder) bytes(b []byte) {
	e.buf = append(e.buf, '"')
	e.buf = base64.StdEncoding.AppendEncode(e.buf, b)
	e.buf = append(e.buf, '"')
}

func (e *encoder) timestamp(t time.Time) {
	e.buf = append(e.buf, '"')
	e.buf = t.AppendFormat(e.buf, time.RFC3339Nano)
	e.buf = append(e.buf, '"')
}

// duration writes d as CEL's string(d) does: seconds with a fraction, "1.5s".
func (e *encoder) duration(d time.Duration) {
	e.buf = append(e.buf, '"')
	e.buf = strconv.AppendFloat(e.buf, d.Seconds(), 'f', -1, 64)
	e.buf = append(e.buf, 's', '"')
}

const hexDigits = "0123456789abcdef"

// str writes s quoted, escaping '"', '\\', control characters, U+2028 and
// U+2029, and replacing invalid UTF-8 with U+FFFD.
func (e *encoder) str(s string) {
	buf := append(e.buf, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if strSafe[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			buf = append(buf, s[start:i]...)
			switch c {
			case '"', '\\':
				buf = append(buf, '\\', c)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			buf = append(buf, s[start:i]...)
			buf = append(buf, "\ufffd"...)
		case r == '\u2028' || r == '\u2029':
			buf = append(buf, s[start:i]...)
			buf = append(buf, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	buf = append(buf, s[start:]...)
	e.buf = append(buf, '"')
}
