package expr

import (
	"encoding/binary"
	"math/bits"
	"unicode/utf8"
)

// strSafe marks the bytes a string body may hold without a closer look:
// everything except control characters, '"', '\\' and non-ASCII bytes.
var strSafe = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const (
	lsbs = 0x0101010101010101
	msbs = 0x8080808080808080
)

// special sets the high bit of the lowest byte of w, read little-endian, that
// is '"', '\\' or a control character, if any; higher bits may be set
// spuriously.
func special(w uint64) uint64 {
	q := w ^ (lsbs * '"')
	b := w ^ (lsbs * '\\')
	return ((q-lsbs)&^q | (b-lsbs)&^b | (w-lsbs*0x20)&^w) & msbs
}

// scanString validates the string whose opening quote is under d.pos, moves
// past its closing quote and returns its body. plain reports that the body
// has no escapes and is valid UTF-8, so it is its own decoded form.
func (d *decoder) scanString() (body []byte, plain bool, err error) {
	data := d.data
	start := d.pos + 1
	i := start
	plain = true
	ascii := true
	var high uint64 // high bits of the bytes passed over, to spot non-ASCII
	for {
		for i+8 <= len(data) {
			w := binary.LittleEndian.Uint64(data[i:])
			m := special(w)
			if m == 0 {
				high |= w
				i += 8
				continue
			}
			k := bits.TrailingZeros64(m) / 8
			high |= w & (1<<(8*k) - 1)
			i += k
			break
		}
		for i < len(data) && strSafe[data[i]] {
			i++
		}
		if i >= len(data) {
			d.pos = i
			return nil, false, d.unexpected("closing '\"'")
		}
		switch c := data[i]; {
		case c == '"':
			body = data[start:i]
			d.pos = i + 1
			d.ascii = ascii && high&msbs == 0
			if (!ascii || high&msbs != 0) && plain {
				plain = utf8.Valid(body)
			}
			return body, plain, nil
		case c == '\\':
			plain = false
			if i+1 >= len(data) {
				d.pos = i + 1
				return nil, false, d.unexpected("escape")
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for j := i + 2; j < i+6; j++ {
					if j >= len(data) || !isHex(data[j]) {
						d.pos = j
						return nil, false, d.unexpected("hex digit in \\u escape")
					}
				}
				i += 6
			default:
				d.pos = i + 1
				return nil, false, d.errorf("invalid escape %q", data[i:i+2])
			}
		case c < 0x20:
			d.pos = i
			return nil, false, d.errorf("control character %q in string", c)
		default:
			ascii = false
			i++
		}
	}
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// scanNumber validates the number under d.pos, moves past it and reports
// whether it is an integer literal (no fraction, no exponent).
func (d *decoder) scanNumber() (integral bool, err error) {
	data := d.data
	i := d.pos
	if data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case i < len(data) && data[i] >= '1' && data[i] <= '9':
		i++
		for i < len(data) && isDigit(data[i]) {
			i++
		}
	default:
		d.pos = i
		return false, d.unexpected("digit")
	}
	integral = true
	if i < len(data) && data[i] == '.' {
		integral = false
		i++
		if i >= len(data) || !isDigit(data[i]) {
			d.pos = i
			return false, d.unexpected("digit after '.'")
		}
		for i < len(data) && isDigit(data[i]) {
			i++
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		integral = false
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= len(data) || !isDigit(data[i]) {
			d.pos = i
			return false, d.unexpected("digit in exponent")
		}
		for i < len(data) && isDigit(data[i]) {
			i++
		}
	}
	d.pos = i
	return integral, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// skip validates the value under d.pos and moves past it without decoding.
func (d *decoder) skip() error {
	d.skipSpace()
	if d.pos >= len(d.data) {
		return d.unexpected("value")
	}
	switch c := d.data[d.pos]; {
	case c == '"':
		_, _, err := d.scanString()
		return err
	case c == '{':
		return d.skipObject()
	case c == '[':
		return d.skipArray()
	case c == '-' || c >= '0' && c <= '9':
		_, err := d.scanNumber()
		return err
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == 'n':
		return d.literal("null")
	}
	return d.unexpected("value")
}

func (d *decoder) skipObject() error {
	if d.depth++; d.depth > MaxDepth {
		return d.tooDeep()
	}
	d.pos++
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		d.depth--
		return nil
	}
	for more := true; more; {
		d.skipSpace()
		if d.pos >= len(d.data) || d.data[d.pos] != '"' {
			return d.unexpected("object key")
		}
		if _, _, err := d.scanString(); err != nil {
			return err
		}
		if err := d.colon(); err != nil {
			return err
		}
		if err := d.skip(); err != nil {
			return err
		}
		var err error
		if more, err = d.next('}'); err != nil {
			return err
		}
	}
	d.depth--
	return nil
}

func (d *decoder) skipArray() error {
	if d.depth++; d.depth > MaxDepth {
		return d.tooDeep()
	}
	d.pos++
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		d.depth--
		return nil
	}
	for more := true; more; {
		if err := d.skip(); err != nil {
			return err
		}
		var err error
		if more, err = d.next(']'); err != nil {
			return err
		}
	}
	d.depth--
	return nil
}
