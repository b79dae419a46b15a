package expr

import (
	"bytes"
	"math"
	"slices"
	"sync"
	"unsafe"
)

// Object is a JSON object body scanned once: the key of each top-level
// member and where its value lies in the body. An evaluation given it
// decodes only the members the expression reads, and [Object.Patch]
// re-encodes the body from it, copying the values that are already in
// their encoded form instead of scanning them again.
//
// An Object is immutable and safe for concurrent use; it refers to the
// body it was scanned from, which must not change.
type Object struct {
	body    []byte
	members []objMember
	// keys holds the decoded keys that have escapes, which are rare.
	keys []string
}

// objMember is a top-level member: where its key and its value lie. It
// holds no pointer, so the garbage collector does not scan the members.
type objMember struct {
	// key0, keyN: the key's body is body[key0:key0+keyN]; if escaped,
	// its decoded form is keys[key0].
	key0, keyN int32
	from, to   int32
	escaped    bool
	// ascii: key needs no escaping (plain, all ASCII).
	ascii bool
	// canon: the value's bytes are what EncodeJSON writes for its
	// decoded form, so a patch copies them as they are.
	canon bool
}

// key returns m's decoded key, which may point into o.body.
func (o *Object) key(m *objMember) string {
	if m.escaped {
		return o.keys[m.key0]
	}
	return unsafe.String(unsafe.SliceData(o.body[m.key0:]), m.keyN)
}

// ScanObject scans body, a JSON object, once. It returns nil when body is
// not a valid JSON object within the package's limits; callers then decode
// it for the value or the precise error. Numbers are not range-checked
// here: decoding one beyond the double range fails when it is read.
func ScanObject(body []byte) *Object {
	s := scanPool.Get().(*objScan)
	defer s.release()
	if len(body) > math.MaxInt32 {
		return nil // offsets are int32
	}
	d := &s.d
	d.data, d.pos, d.depth = body, 0, 0
	d.skipSpace()
	if d.pos >= len(body) || body[d.pos] != '{' {
		return nil
	}
	d.depth = 1
	d.pos++
	d.skipSpace()
	if d.pos < len(body) && body[d.pos] == '}' {
		d.pos++
	} else {
		for more := true; more; {
			d.skipSpace()
			if d.pos >= len(body) || body[d.pos] != '"' {
				return nil
			}
			raw, plain, err := d.scanString()
			if err != nil {
				return nil
			}
			m := objMember{ascii: plain && d.ascii, escaped: !plain}
			m.key0, m.keyN = int32(d.pos-1-len(raw)), int32(len(raw)) // d.pos is past the closing quote
			if !plain {
				m.key0 = int32(len(s.keys))
				s.keys = append(s.keys, string(unescape(nil, raw)))
			}
			if d.colon() != nil {
				return nil
			}
			d.skipSpace()
			from := d.pos
			canon, err := d.skipCanon()
			if err != nil {
				return nil
			}
			m.from, m.to, m.canon = int32(from), int32(d.pos), canon
			s.members = append(s.members, m)
			if more, err = d.next('}'); err != nil {
				return nil
			}
		}
	}
	if d.end() != nil {
		return nil
	}
	o := newObject(body, s.members)
	if len(s.keys) > 0 {
		o.keys = slices.Clone(s.keys)
	}
	return o
}

// objectPool holds the Objects given back with Release.
var objectPool sync.Pool

// Release gives o back for reuse by a later ScanObject. Call it only when
// nothing refers to o any more: an evaluation's own scan of a message it
// drops, for instance, never one cached on a message (copies of the
// message may share it).
func (o *Object) Release() {
	if cap(o.members) > 32 {
		return
	}
	o.body = nil
	clear(o.keys)
	o.keys = nil
	objectPool.Put(o)
}

// newObject returns an Object of body and a copy of members, allocated
// together for objects of up to 32 members.
func newObject(body []byte, members []objMember) *Object {
	if o, _ := objectPool.Get().(*Object); o != nil {
		if cap(o.members) >= len(members) {
			o.body, o.members = body, append(o.members[:0], members...)
			return o
		}
		objectPool.Put(o)
	}
	switch n := len(members); {
	case n <= 4:
		a := new(struct {
			o Object
			m [4]objMember
		})
		a.o = Object{body: body, members: append(a.m[:0], members...)}
		return &a.o
	case n <= 8:
		a := new(struct {
			o Object
			m [8]objMember
		})
		a.o = Object{body: body, members: append(a.m[:0], members...)}
		return &a.o
	case n <= 16:
		a := new(struct {
			o Object
			m [16]objMember
		})
		a.o = Object{body: body, members: append(a.m[:0], members...)}
		return &a.o
	case n <= 32:
		a := new(struct {
			o Object
			m [32]objMember
		})
		a.o = Object{body: body, members: append(a.m[:0], members...)}
		return &a.o
	}
	return &Object{body: body, members: slices.Clone(members)}
}

// objScan is the scratch of one ScanObject.
type objScan struct {
	d       decoder
	members []objMember
	keys    []string
}

var scanPool = sync.Pool{New: func() any { return new(objScan) }}

func (s *objScan) release() {
	s.d.data = nil
	clear(s.members)
	s.members = s.members[:0]
	clear(s.keys)
	s.keys = s.keys[:0]
	if cap(s.members) > 1024 {
		s.members = nil
	}
	scanPool.Put(s)
}

// decodeFields decodes into out the members whose keys are in fields, as
// the package's decodeFields does on the body: every occurrence in body
// order, the last one kept, the first error returned.
func (o *Object) decodeFields(fields []string, out map[string]any) error {
	d := getDecoder(o.body)
	defer putDecoder(d)
	for i := range o.members {
		m := &o.members[i]
		k := o.key(m)
		for _, f := range fields {
			if k != f {
				continue
			}
			d.pos, d.depth = int(m.from), 1
			v, err := d.value()
			if err != nil {
				return err
			}
			out[f] = v
			break
		}
	}
	return nil
}

// Patch is [PatchObject] on the scanned body: the same bytes and the same
// ok, from the members already found. Values in their encoded form are
// copied; only the others are scanned again.
func (o *Object) Patch(set []Field, del []string) (out []byte, ok bool) {
	t := patcherPool.Get().(*patcher)
	defer t.release()
	t.d.data = o.body
	for i := range o.members {
		m := &o.members[i]
		from := len(t.e.buf)
		if m.canon {
			t.e.buf = append(t.e.buf, o.body[m.from:m.to]...)
		} else {
			t.d.pos, t.d.depth = int(m.from), 1
			if t.value() != nil {
				return nil, false
			}
		}
		t.members = append(t.members, member{o.key(m), i, from, len(t.e.buf), m.ascii})
	}
	t.d.depth = 1
	if t.close(0, 0, set, del) != nil {
		return nil, false
	}
	return append([]byte(nil), t.e.buf...), true
}

// spaced skips whitespace and reports whether there was any.
func (d *decoder) spaced() bool {
	p := d.pos
	d.skipSpace()
	return d.pos != p
}

// skipCanon is skip, for a value with no whitespace before it, that also
// reports whether the value's bytes are what EncodeJSON writes for its
// decoded form: no whitespace, object keys plain ASCII and strictly
// increasing, strings plain ASCII, integers that fit in int64 other than
// -0, short decimals (canonDecimal) and literals. Other numbers are not
// judged canonical, though some are.
func (d *decoder) skipCanon() (bool, error) {
	if d.pos >= len(d.data) {
		return false, d.unexpected("value")
	}
	switch c := d.data[d.pos]; {
	case c == '"':
		_, plain, err := d.scanString()
		return plain && d.ascii, err
	case c == '{':
		return d.skipObjectCanon()
	case c == '[':
		return d.skipArrayCanon()
	case c == '-' || c >= '0' && c <= '9':
		start := d.pos
		integral, err := d.scanNumber()
		n := d.pos - start
		if err != nil {
			return false, err
		}
		if !integral {
			return canonDecimal(d.data[start:d.pos]), nil
		}
		minusZero := n == 2 && c == '-' && d.data[start+1] == '0' // decodes to 0
		return n <= 18 && !minusZero, nil                         // 18 bytes: within int64
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return true, d.literal("false")
	case c == 'n':
		return true, d.literal("null")
	}
	return false, d.unexpected("value")
}

func (d *decoder) skipObjectCanon() (bool, error) {
	if d.depth++; d.depth > MaxDepth {
		return false, d.tooDeep()
	}
	d.pos++
	canon := !d.spaced()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		d.depth--
		return canon, nil
	}
	var prev []byte
	for more, first := true, true; more; first = false {
		canon = !d.spaced() && canon
		if d.pos >= len(d.data) || d.data[d.pos] != '"' {
			return false, d.unexpected("object key")
		}
		key, plain, err := d.scanString()
		if err != nil {
			return false, err
		}
		canon = canon && plain && d.ascii && (first || bytes.Compare(prev, key) < 0)
		prev = key
		p := d.pos
		if err := d.colon(); err != nil {
			return false, err
		}
		canon = canon && d.pos == p+1 && !d.spaced()
		c, err := d.skipCanon()
		if err != nil {
			return false, err
		}
		p = d.pos
		if more, err = d.next('}'); err != nil {
			return false, err
		}
		canon = canon && c && d.pos == p+1
	}
	d.depth--
	return canon, nil
}

func (d *decoder) skipArrayCanon() (bool, error) {
	if d.depth++; d.depth > MaxDepth {
		return false, d.tooDeep()
	}
	d.pos++
	canon := !d.spaced()
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		d.depth--
		return canon, nil
	}
	for more := true; more; {
		canon = !d.spaced() && canon
		c, err := d.skipCanon()
		if err != nil {
			return false, err
		}
		p := d.pos
		if more, err = d.next(']'); err != nil {
			return false, err
		}
		canon = canon && c && d.pos == p+1
	}
	d.depth--
	return canon, nil
}

// canonDecimal reports whether lit, a valid JSON number with a fraction or
// an exponent, is what the encoder writes for the double it decodes to. It
// is for a plain decimal of at most 15 digits whose fraction does not end
// in 0, at least 1e-6 in magnitude: 15 digits survive the round trip
// through a double, so the shortest decimal that reads back as it is
// the literal itself, written without an exponent from 1e-6 to 1e21.
func canonDecimal(lit []byte) bool {
	if lit[0] == '-' {
		lit = lit[1:]
	}
	if len(lit) > 16 || lit[len(lit)-1] == '0' { // 15 digits and the point
		return false
	}
	dot := -1
	for i, c := range lit {
		switch {
		case c == '.':
			dot = i
		case !isDigit(c):
			return false // an exponent
		}
	}
	if dot != 1 || lit[0] != '0' {
		return dot > 0
	}
	zeros := 0 // 0.000001 is 1e-6
	for _, c := range lit[2:] {
		if c != '0' {
			break
		}
		zeros++
	}
	return zeros <= 5
}
