package lookup

// Encoded returns r.Value as encode encodes it, encoding it at most once
// per cache entry: the bytes are kept beside the entry, which is never
// changed once stored (a refresh stores a new entry), so every hit on the
// entry shares them. The caller must not modify the bytes. ok is false
// when r came from no entry (the zero Result) or encode failed; the
// caller then takes its ordinary path, which reports the error.
//
// Two Gets racing on a fresh entry may both encode; encode must be
// deterministic, so either's bytes serve.
func (r Result) Encoded(encode func(any) ([]byte, error)) (b []byte, ok bool) {
	if r.e == nil {
		return nil, false
	}
	if p := r.e.enc.Load(); p != nil {
		return *p, true
	}
	b, err := encode(r.e.val)
	if err != nil {
		return nil, false
	}
	r.e.enc.Store(&b)
	return b, true
}
