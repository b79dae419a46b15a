package expr

// decodeFields decodes into out the members of the JSON object b whose keys
// are in fields, and validates the rest of b without decoding it. It returns
// false, leaving out untouched, if b does not hold an object; the caller then
// decodes b whole. A key that appears twice keeps its last value, as in
// DecodeJSON. Keys of out are the strings of fields, so the scan allocates
// only the values it decodes.
func decodeFields(b []byte, fields []string, out map[string]any) (bool, error) {
	d := getDecoder(b)
	defer putDecoder(d)
	d.skipSpace()
	if d.pos >= len(b) || b[d.pos] != '{' {
		return false, nil
	}
	d.depth = 1
	d.pos++
	d.skipSpace()
	if d.pos < len(b) && b[d.pos] == '}' {
		d.pos++
		return true, d.end()
	}
	for more := true; more; {
		d.skipSpace()
		if d.pos >= len(b) || b[d.pos] != '"' {
			return true, d.unexpected("object key")
		}
		raw, plain, err := d.scanString()
		if err != nil {
			return true, err
		}
		if !plain {
			d.buf = unescape(d.buf[:0], raw)
			raw = d.buf
		}
		field := -1
		for i, f := range fields {
			if string(raw) == f {
				field = i
				break
			}
		}
		if err := d.colon(); err != nil {
			return true, err
		}
		if field < 0 {
			err = d.skip()
		} else {
			var v any
			if v, err = d.value(); err == nil {
				out[fields[field]] = v
			}
		}
		if err != nil {
			return true, err
		}
		if more, err = d.next('}'); err != nil {
			return true, err
		}
	}
	return true, d.end()
}
