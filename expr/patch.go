package expr

import (
	"slices"
	"strings"
	"sync"
	"unsafe"
)

// Field is a top-level member of a JSON object: Key and Value, a value as
// DecodeJSON returns it. Raw, when not nil, is Value already encoded by
// EncodeMember and is written as it is instead of encoding Value: a value
// set into many bodies is encoded once.
type Field struct {
	Key   string
	Value any
	Raw   []byte
}

// EncodeMember returns what PatchObject writes for v as the value of a
// top-level member: EncodeJSON's bytes for v, refused as the member would
// be (nested one level deeper than v alone). Use it to fill Field.Raw.
func EncodeMember(v any) ([]byte, error) {
	e := encoderPool.Get().(*encoder)
	defer e.release()
	e.depth = 1
	if err := e.native(v); err != nil {
		return nil, err
	}
	return slices.Clone(e.buf), nil
}

// PatchObject returns what EncodeJSON would return for the object body
// decodes to, with each of set's keys set to its value and then each of
// del's keys deleted (a later set of the same key wins), without decoding
// body into maps: it re-encodes body's members as it scans them. ok is
// false, and nothing else is meaningful, when body is not a valid JSON
// object within the package's limits; the caller decodes it then, for the
// precise error.
func PatchObject(body []byte, set []Field, del []string) (out []byte, ok bool) {
	t := patcherPool.Get().(*patcher)
	defer t.release()
	t.d.data, t.d.pos, t.d.depth = body, 0, 0
	t.d.skipSpace()
	if t.d.pos >= len(t.d.data) || t.d.data[t.d.pos] != '{' {
		return nil, false
	}
	if t.object(set, del) != nil || t.d.end() != nil {
		return nil, false
	}
	return slices.Clone(t.e.buf), true
}

// patcher transcodes JSON into the encoding EncodeJSON gives its decoded
// form: object keys sorted (the last of a repeated key wins), strings,
// numbers and literals as decoded and re-encoded.
type patcher struct {
	d decoder
	e encoder
	// members holds the members of the open objects, with the span of
	// their encoded value in e.buf; tmp is where an object's encoded
	// values wait while they are written back in key order.
	members []member
	tmp     []byte
}

type member struct {
	key      string
	order    int
	from, to int
	// ascii: key needs no escaping (a plain, all-ASCII key).
	ascii bool
}

var patcherPool = sync.Pool{New: func() any { return new(patcher) }}

func (t *patcher) release() {
	t.d.data = nil
	t.e.buf, t.e.depth = t.e.buf[:0], 0
	if cap(t.e.buf) > maxPooledBuffer {
		t.e.buf = nil
	}
	clear(t.members[:cap(t.members)])
	t.members = t.members[:0]
	if cap(t.tmp) > maxPooledBuffer {
		t.tmp = nil
	}
	patcherPool.Put(t)
}

// value transcodes the value under d.pos.
func (t *patcher) value() error {
	d := &t.d
	d.skipSpace()
	if d.pos >= len(d.data) {
		return d.unexpected("value")
	}
	switch c := d.data[d.pos]; {
	case c == '"':
		raw, plain, err := d.scanString()
		if err != nil {
			return err
		}
		t.str(raw, plain && t.d.ascii)
		return nil
	case c == '{':
		return t.object(nil, nil)
	case c == '[':
		return t.array()
	}
	v, err := d.value() // a number or a literal: no allocation but a large number's
	if err != nil {
		return err
	}
	return t.e.native(v)
}

// str encodes a scanned string as the decoder would decode it. A string
// with no escapes that is all ASCII (printable: the scan refuses control
// characters) is written as it is, as the encoder would write it.
func (t *patcher) str(raw []byte, plainASCII bool) {
	if plainASCII {
		t.e.buf = append(append(append(t.e.buf, '"'), raw...), '"')
		return
	}
	t.d.buf = unescape(t.d.buf[:0], raw)
	t.e.str(unsafe.String(unsafe.SliceData(t.d.buf), len(t.d.buf))) // copied at once
}

func (t *patcher) array() error {
	d := &t.d
	if d.depth++; d.depth > MaxDepth {
		return d.tooDeep()
	}
	d.pos++
	t.e.buf = append(t.e.buf, '[')
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		d.depth--
		t.e.buf = append(t.e.buf, ']')
		return nil
	}
	for {
		if err := t.value(); err != nil {
			return err
		}
		more, err := d.next(']')
		if err != nil {
			return err
		}
		if !more {
			break
		}
		t.e.buf = append(t.e.buf, ',')
	}
	t.e.buf = append(t.e.buf, ']')
	d.depth--
	return nil
}

// object transcodes the object under d.pos, with set and del applied to
// its members.
func (t *patcher) object(set []Field, del []string) error {
	d := &t.d
	if d.depth++; d.depth > MaxDepth {
		return d.tooDeep()
	}
	d.pos++
	start, base := len(t.members), len(t.e.buf)
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
	} else {
		for {
			d.skipSpace()
			if d.pos >= len(d.data) || d.data[d.pos] != '"' {
				return d.unexpected("object key")
			}
			raw, plain, err := d.scanString()
			if err != nil {
				return err
			}
			var k string
			ascii := plain && d.ascii
			if plain {
				k = unsafe.String(unsafe.SliceData(raw), len(raw)) // body outlives the call
			} else {
				k = string(unescape(nil, raw))
			}
			if err := d.colon(); err != nil {
				return err
			}
			from := len(t.e.buf)
			if err := t.value(); err != nil {
				return err
			}
			t.members = append(t.members, member{k, len(t.members), from, len(t.e.buf), ascii})
			more, err := d.next('}')
			if err != nil {
				return err
			}
			if !more {
				break
			}
		}
	}
	return t.close(start, base, set, del)
}

// close ends the object whose members are t.members[start:], encoded from
// t.e.buf[base:]: it adds set, drops del and writes the members back in
// key order.
func (t *patcher) close(start, base int, set []Field, del []string) error {
	d := &t.d
	t.e.depth = d.depth // as deep as in the encoding of the whole object
	for _, f := range set {
		from := len(t.e.buf)
		if f.Raw != nil {
			t.e.buf = append(t.e.buf, f.Raw...)
		} else if err := t.e.native(f.Value); err != nil {
			return err
		}
		t.members = append(t.members, member{f.Key, len(t.members), from, len(t.e.buf), false})
	}
	members := t.members[start:]
	sortMembers(members)
	t.tmp = append(t.tmp[:0], t.e.buf[base:]...)
	t.e.buf = append(t.e.buf[:base], '{')
	first := true
	for i, m := range members {
		if i+1 < len(members) && members[i+1].key == m.key || slices.Contains(del, m.key) {
			continue // a later one wins, or deleted
		}
		if !first {
			t.e.buf = append(t.e.buf, ',')
		}
		first = false
		if m.ascii {
			t.e.buf = append(append(append(t.e.buf, '"'), m.key...), '"')
		} else {
			t.e.str(m.key)
		}
		t.e.buf = append(t.e.buf, ':')
		t.e.buf = append(t.e.buf, t.tmp[m.from-base:m.to-base]...)
	}
	t.e.buf = append(t.e.buf, '}')
	t.e.depth = 0
	clear(members)
	t.members = t.members[:start]
	d.depth--
	return nil
}

// sortMembers sorts ms by key, then by order: by insertion when there are
// few (most objects), which beats a general sort's calls per comparison.
func sortMembers(ms []member) {
	if len(ms) > 16 {
		slices.SortFunc(ms, func(a, b member) int {
			if c := strings.Compare(a.key, b.key); c != 0 {
				return c
			}
			return a.order - b.order
		})
		return
	}
	for i := 1; i < len(ms); i++ {
		for j := i; j > 0 && memberLess(&ms[j], &ms[j-1]); j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
}

func memberLess(a, b *member) bool {
	return a.key < b.key || a.key == b.key && a.order < b.order
}
