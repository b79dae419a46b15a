package expr

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxDepth is the deepest nesting of arrays and objects that decoding accepts.
const MaxDepth = 1000

var (
	// ErrTooDeep is the cause of a SyntaxError for input nested deeper than MaxDepth.
	ErrTooDeep = errors.New("nesting deeper than 1000 levels")
	// ErrNumberRange is the cause of a SyntaxError for a number beyond the double range.
	ErrNumberRange = errors.New("number out of range")
)

// SyntaxError reports input that DecodeJSON cannot decode.
type SyntaxError struct {
	Offset int    // byte offset in the input where decoding stopped
	Msg    string // what was wrong there
	Err    error  // ErrTooDeep, ErrNumberRange or nil
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at offset %d: %s", e.Offset, e.Msg)
}

func (e *SyntaxError) Unwrap() error { return e.Err }

// DecodeJSON decodes one JSON document into map[string]any, []any, string,
// int64, uint64, BigInt, float64, bool and nil, following the number rules in the
// package doc. Strings keep invalid UTF-8 bytes as U+FFFD, as encoding/json
// does; when an object repeats a key the last value wins. Errors are
// *SyntaxError values.
func DecodeJSON(b []byte) (any, error) {
	d := getDecoder(b)
	defer putDecoder(d)
	v, err := d.value()
	if err != nil {
		return nil, err
	}
	if err := d.end(); err != nil {
		return nil, err
	}
	return v, nil
}

// kv is an object member waiting for its map.
type kv struct {
	k string
	v any
}

// decoder reads one JSON document from data. Its scratch stacks collect the
// members of open objects and arrays so that each map and slice is allocated
// once at its final size.
type decoder struct {
	data  []byte
	pos   int
	depth int
	kvs   []kv
	vals  []any
	buf   []byte // unescaped string bytes
	// ascii reports that the body of the last string scanned (with its
	// escapes, if any, undone or not) is all ASCII.
	ascii bool
	// keys interns object keys: messages of one stream repeat the same
	// few keys, each of which would otherwise be allocated per message.
	// Sharing an immutable string is safe; the table is bounded.
	keys map[string]string
}

// Bounds of a decoder's key table: keys longer than maxInternedKey are not
// interned, and the table is emptied when it reaches maxInternedKeys.
const (
	maxInternedKey  = 64
	maxInternedKeys = 1024
)

// key decodes the object key starting at the opening quote under d.pos.
func (d *decoder) key() (string, error) {
	raw, plain, err := d.scanString()
	if err != nil {
		return "", err
	}
	if !plain {
		d.buf = unescape(d.buf[:0], raw)
		raw = d.buf
	}
	if len(raw) > maxInternedKey {
		return string(raw), nil
	}
	if k, ok := d.keys[string(raw)]; ok { // no allocation for the lookup
		return k, nil
	}
	if d.keys == nil || len(d.keys) >= maxInternedKeys {
		d.keys = make(map[string]string, 64)
	}
	k := string(raw)
	d.keys[k] = k
	return k, nil
}

var decoderPool = sync.Pool{New: func() any { return new(decoder) }}

func getDecoder(b []byte) *decoder {
	d := decoderPool.Get().(*decoder)
	d.data, d.pos, d.depth = b, 0, 0
	return d
}

func putDecoder(d *decoder) {
	d.data = nil
	decoderPool.Put(d)
}

func (d *decoder) errorf(format string, args ...any) error {
	return &SyntaxError{Offset: d.pos, Msg: fmt.Sprintf(format, args...)}
}

func (d *decoder) unexpected(what string) error {
	if d.pos >= len(d.data) {
		return &SyntaxError{Offset: d.pos, Msg: "unexpected end of input, want " + what}
	}
	return &SyntaxError{Offset: d.pos, Msg: fmt.Sprintf("unexpected %q, want %s", d.data[d.pos], what)}
}

func (d *decoder) tooDeep() error {
	return &SyntaxError{Offset: d.pos, Msg: ErrTooDeep.Error(), Err: ErrTooDeep}
}

func (d *decoder) skipSpace() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// end checks that only whitespace follows the top-level value.
func (d *decoder) end() error {
	d.skipSpace()
	if d.pos != len(d.data) {
		return d.errorf("unexpected %q after top-level value", d.data[d.pos])
	}
	return nil
}

func (d *decoder) value() (any, error) {
	d.skipSpace()
	if d.pos >= len(d.data) {
		return nil, d.unexpected("value")
	}
	switch c := d.data[d.pos]; {
	case c == '"':
		return d.str()
	case c == '{':
		return d.object()
	case c == '[':
		return d.array()
	case c == '-' || c >= '0' && c <= '9':
		return d.number()
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	}
	return nil, d.unexpected("value")
}

func (d *decoder) literal(lit string) error {
	if len(d.data)-d.pos < len(lit) || string(d.data[d.pos:d.pos+len(lit)]) != lit {
		return d.errorf("invalid literal, want %s", lit)
	}
	d.pos += len(lit)
	return nil
}

func (d *decoder) object() (any, error) {
	if d.depth++; d.depth > MaxDepth {
		return nil, d.tooDeep()
	}
	d.pos++
	start := len(d.kvs)
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		d.depth--
		return map[string]any{}, nil
	}
	for {
		d.skipSpace()
		if d.pos >= len(d.data) || d.data[d.pos] != '"' {
			return nil, d.unexpected("object key")
		}
		k, err := d.key()
		if err != nil {
			return nil, err
		}
		if err := d.colon(); err != nil {
			return nil, err
		}
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		d.kvs = append(d.kvs, kv{k, v})
		more, err := d.next('}')
		if err != nil {
			return nil, err
		}
		if !more {
			break
		}
	}
	members := d.kvs[start:]
	m := make(map[string]any, len(members))
	for _, e := range members {
		m[e.k] = e.v
	}
	clear(members)
	d.kvs = d.kvs[:start]
	d.depth--
	return m, nil
}

func (d *decoder) array() (any, error) {
	if d.depth++; d.depth > MaxDepth {
		return nil, d.tooDeep()
	}
	d.pos++
	start := len(d.vals)
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		d.depth--
		return []any{}, nil
	}
	for {
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		d.vals = append(d.vals, v)
		more, err := d.next(']')
		if err != nil {
			return nil, err
		}
		if !more {
			break
		}
	}
	elems := d.vals[start:]
	l := make([]any, len(elems))
	copy(l, elems)
	clear(elems)
	d.vals = d.vals[:start]
	d.depth--
	return l, nil
}

// colon consumes the ':' after an object key.
func (d *decoder) colon() error {
	d.skipSpace()
	if d.pos >= len(d.data) || d.data[d.pos] != ':' {
		return d.unexpected("':' after object key")
	}
	d.pos++
	return nil
}

// next consumes the ',' or the closing byte after a member or element and
// reports whether another follows.
func (d *decoder) next(closing byte) (bool, error) {
	d.skipSpace()
	if d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ',':
			d.pos++
			return true, nil
		case closing:
			d.pos++
			return false, nil
		}
	}
	return false, d.unexpected("',' or '" + string(closing) + "'")
}

// str decodes the string starting at the opening quote under d.pos.
func (d *decoder) str() (string, error) {
	raw, plain, err := d.scanString()
	if err != nil {
		return "", err
	}
	if plain {
		return string(raw), nil
	}
	d.buf = unescape(d.buf[:0], raw)
	return string(d.buf), nil
}

// number decodes the number under d.pos.
func (d *decoder) number() (any, error) {
	start := d.pos
	integral, err := d.scanNumber()
	if err != nil {
		return nil, err
	}
	lit := d.data[start:d.pos]
	if integral {
		if v, ok := parseInt(lit); ok {
			return v, nil
		}
		if lit[0] != '-' {
			if v, err := strconv.ParseUint(string(lit), 10, 64); err == nil {
				return v, nil
			}
		}
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil {
		return nil, &SyntaxError{Offset: start, Msg: fmt.Sprintf("%s: %s", ErrNumberRange, lit), Err: ErrNumberRange}
	}
	if integral {
		return BigInt(lit), nil
	}
	return f, nil
}

// parseInt parses a validated integer literal, reporting false if it does
// not fit in int64.
func parseInt(lit []byte) (int64, bool) {
	neg := lit[0] == '-'
	digits := lit
	if neg {
		digits = lit[1:]
	}
	if len(digits) <= 18 {
		var n int64
		for _, c := range digits {
			n = n*10 + int64(c-'0')
		}
		if neg {
			n = -n
		}
		return n, true
	}
	n, err := strconv.ParseInt(string(lit), 10, 64)
	return n, err == nil
}

// unescape appends the decoded form of a validated string body to buf,
// replacing invalid UTF-8 and unpaired surrogates with U+FFFD as
// encoding/json does.
func unescape(buf, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c == '\\' {
			i++
			switch raw[i] {
			case 'b':
				buf = append(buf, '\b')
			case 'f':
				buf = append(buf, '\f')
			case 'n':
				buf = append(buf, '\n')
			case 'r':
				buf = append(buf, '\r')
			case 't':
				buf = append(buf, '\t')
			case 'u':
				r := hex4(raw[i+1 : i+5])
				i += 5
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
						r2 = hex4(raw[i+2 : i+6])
					}
					if r = utf16.DecodeRune(r, r2); r != utf8.RuneError {
						i += 6
					}
				}
				buf = utf8.AppendRune(buf, r)
				continue
			default: // '"', '\\' and '/' stand for themselves
				buf = append(buf, raw[i])
			}
			i++
			continue
		}
		if c < utf8.RuneSelf {
			buf = append(buf, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(raw[i:])
		if r == utf8.RuneError && size == 1 {
			buf = utf8.AppendRune(buf, utf8.RuneError)
		} else {
			buf = append(buf, raw[i:i+size]...)
		}
		i += size
	}
	return buf
}

// hex4 decodes four validated hex digits.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		r <<= 4
		switch {
		case c <= '9':
			r |= rune(c - '0')
		case c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			r |= rune(c - 'a' + 10)
		}
	}
	return r
}
