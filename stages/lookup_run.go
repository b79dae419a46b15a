package stages

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"sync"

	"github.com/pipe-dsl/pipe/expr"
	"github.com/pipe-dsl/pipe/internal/lookup"
	"github.com/pipe-dsl/pipe/internal/lookup/store"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/resilience"
)

// lookupStage enriches each message with the result for its key.
//
//	in  -- a(k1) -- b(k2) -- c(k1) --
//	     [ cache | one flight per key | groups of keys -> store ]
//	out -- a+r(k1) - b+r(k2) - c+r(k1)
//
// Concurrency comes from the stage's workers: each worker waits for its
// message's result, so a coalesced group holds at most workers keys.
type lookupStage struct {
	cfg    lookupConfig
	kind   string // postgres, redis or http
	into   []string
	lcfg   lookup.Config
	loader *lookup.Loader

	mu       sync.Mutex
	policies []resilience.Policy // set by Guard before the pipeline runs
}

var (
	_ pipeline.Processor = (*lookupStage)(nil)
	_ pipeline.Closer    = (*lookupStage)(nil)
	_ pipeline.Reporter  = (*lookupStage)(nil)
	_ resilience.Guarded = (*lookupStage)(nil)
	_ resilience.Wrapped = (*lookupStage)(nil)
)

// Process looks m's key up and merges the result into m.
func (l *lookupStage) Process(ctx context.Context, m *pipeline.Message) (*pipeline.Message, error) {
	if m.Batch() != nil {
		return nil, errBatch("lookup")
	}
	in := input(m)
	// Decode the whole body once, for the key and the merge alike, unless
	// an earlier stage left it decoded (then it may be shared: merge copies).
	shared := in.Decoded != nil
	if !shared && len(l.into) == 1 {
		// A top-level into needs no decoded body when the result is found:
		// evaluate the key on the raw body (decoding only the fields it
		// reads) and patch the body. A key that fails or is null takes the
		// full path below, from the start, for the same errors and results.
		if req, null, err := l.request(m, &in); err == nil && !null {
			return l.lookupRaw(ctx, m, &in, req)
		}
		in = input(m)
	}
	if !shared {
		doc, err := expr.DecodeJSON(m.Body)
		if err != nil {
			return nil, pipeline.WithReason(pipeline.ReasonInvalidPayload, fmt.Errorf("decoding msg: %w", err))
		}
		in.Decoded = doc
	}
	req, null, err := l.request(m, &in)
	keepDecoded(m, &in)
	if err != nil {
		return nil, err
	}
	var res lookup.Result
	if !null {
		res, err = l.loader.Get(ctx, req)
		lookup.Annotate(m.Context(), res, err)
		if err != nil {
			return nil, err
		}
	}
	return l.answer(m, &in, req, res, shared)
}

// lookupRaw finishes Process for a message whose key was evaluated on its
// raw body: Get, then patch the found result in at into, or decode the
// body and answer as Process does. The decoded form is not kept on a
// patched message; a later stage that needs it decodes the new body.
func (l *lookupStage) lookupRaw(ctx context.Context, m *pipeline.Message, in *expr.Input, req lookup.Request) (*pipeline.Message, error) {
	res, err := l.loader.Get(ctx, req)
	lookup.Annotate(m.Context(), res, err)
	if err != nil {
		return nil, err
	}
	if res.Found {
		if raw, ok := res.Encoded(expr.EncodeMember); ok { // once per cache entry
			if b, ok := patchBody(m.Body, in.Object, []expr.Field{{Key: l.into[0], Raw: raw}}); ok {
				m.SetBody(b)
				return m, nil
			}
		}
	}
	if in.Decoded == nil {
		doc, err := expr.DecodeJSON(m.Body)
		if err != nil {
			return nil, pipeline.WithReason(pipeline.ReasonInvalidPayload, fmt.Errorf("decoding msg: %w", err))
		}
		in.Decoded = doc
	}
	keepDecoded(m, in)
	return l.answer(m, in, req, res, false)
}

// patchBody sets fields on body with obj, the scan the key's evaluation
// made of it (no second scan), or with [expr.PatchObject] when there is
// none (the key did not read msg).
func patchBody(body []byte, obj *expr.Object, set []expr.Field) ([]byte, bool) {
	if obj != nil {
		return obj.Patch(set, nil)
	}
	return expr.PatchObject(body, set, nil)
}

// answer merges res into m, or applies on_missing when it was not found.
func (l *lookupStage) answer(m *pipeline.Message, in *expr.Input, req lookup.Request, res lookup.Result, shared bool) (*pipeline.Message, error) {
	var err error
	val := res.Value
	if !res.Found {
		switch {
		case l.cfg.OnMissing.Default != nil:
			in.Vars = map[string]any{"key": req.Arg}
			if val, err = l.cfg.OnMissing.Default.EvalNative(in); err != nil {
				return nil, evalError(fmt.Errorf("on_missing.default: %w", err))
			}
		case l.cfg.OnMissing.Action == "drop":
			return nil, pipeline.Drop(ReasonLookupMissing)
		case l.cfg.OnMissing.Action == "dead_letter":
			return nil, pipeline.WithReason(ReasonLookupMissing, fmt.Errorf("lookup: no %s result for key %q", l.kind, req.Key))
		default:
			return m, nil
		}
	}
	var raw []byte
	if res.Found && len(l.into) == 1 {
		raw, _ = res.Encoded(expr.EncodeMember) // once per cache entry
	}
	return m, l.merge(m, in, val, raw, shared)
}

// request evaluates m's key and the store's address for it: the key
// itself for postgres, the Redis key, or the URL. null reports a null key,
// which is missing without a lookup.
func (l *lookupStage) request(m *pipeline.Message, in *expr.Input) (r lookup.Request, null bool, err error) {
	r.Trace = m.Context()
	var key any
	if l.cfg.Key != nil {
		if key, err = l.cfg.Key.EvalScalar(in); err != nil {
			return r, false, evalError(fmt.Errorf("key: %w", err))
		}
		if key == nil {
			return r, true, nil
		}
		if r.Key, err = store.KeyText(key); err != nil {
			return r, false, evalError(fmt.Errorf("key: %w", err))
		}
	}
	addr := l.cfg.Redis.Key
	if l.kind == "http" {
		addr = l.cfg.HTTP.URL
	}
	switch {
	case l.kind == "postgres":
		r.Arg = key
	case addr == nil:
		r.Arg = r.Key // redis without a key expression: the lookup key's text
	case l.cfg.Key == nil:
		// The address is the key: evaluate it now.
		s, err := l.address(addr, in, nil)
		if err != nil {
			return r, false, err
		}
		r.Arg, r.Key = s, s
	default:
		// The address is a function of the key: evaluate it only when the
		// key goes to the store, so cache hits skip it. Get calls Resolve
		// before Process returns, while in is still this message's.
		r.Resolve = func() (any, error) { return l.address(addr, in, key) }
	}
	return r, false, nil
}

// address evaluates the Redis key or URL expression for a message.
func (l *lookupStage) address(addr *expr.Program, in *expr.Input, key any) (string, error) {
	in.Vars = map[string]any{"key": key}
	v, err := addr.EvalNative(in)
	if err != nil {
		return "", evalError(fmt.Errorf("%s address: %w", l.kind, err))
	}
	s, ok := v.(string)
	if !ok {
		return "", pipeline.WithReason(pipeline.ReasonExpression,
			fmt.Errorf("%s address is %s, not a string", l.kind, jsonKind(v)))
	}
	return s, nil
}

// merge sets the result into m: at into, or field by field into the body.
// raw, when not nil, is val encoded by expr.EncodeMember, for a top-level
// into: the new body is then m's body patched with raw, the same bytes as
// encoding the merged object, without re-encoding the result. The patch
// is used only on a body this call decoded itself (not shared), which is
// m.Body exactly; any failure falls back to encoding the object.
func (l *lookupStage) merge(m *pipeline.Message, in *expr.Input, val any, raw []byte, shared bool) error {
	out, err := objectBody(m, in, "lookup", shared)
	if err != nil {
		return err
	}
	if l.into != nil {
		if err := setPath(out, l.into, val); err != nil {
			return pipeline.WithReason(pipeline.ReasonInvalidPayload, err)
		}
	} else {
		fields, ok := val.(map[string]any)
		if !ok {
			return pipeline.WithReason(pipeline.ReasonInvalidPayload, fmt.Errorf("lookup result is %s, not an object: set into to keep it", jsonKind(val)))
		}
		maps.Copy(out, fields)
	}
	var b []byte
	ok := false
	if raw != nil && !shared {
		b, ok = expr.PatchObject(m.Body, []expr.Field{{Key: l.into[0], Raw: raw}}, nil)
	}
	if !ok {
		if b, err = expr.EncodeJSON(out); err != nil {
			return evalError(err)
		}
	}
	m.SetBody(b)
	m.SetDecoded(out)
	return nil
}

// Guard takes the node's retry, breaker and timeout; they wrap each round
// trip rather than each message, so cache hits pass while the breaker is
// open and serve_stale can answer for a failed store.
func (l *lookupStage) Guard(policies ...resilience.Policy) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.policies = l.policies[:0]
	for _, p := range policies {
		if p != nil {
			l.policies = append(l.policies, p)
		}
	}
}

// Policies returns the policies given to Guard, outermost first.
func (l *lookupStage) Policies() []resilience.Policy {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.policies
}

// guard runs one round trip under the policies. The round trip's context
// (with its span) rides on a message of its own, which the policies read
// for tracing only.
func (l *lookupStage) guard(ctx context.Context, call func(context.Context) error) error {
	ps := l.Policies()
	if len(ps) == 0 {
		return call(ctx)
	}
	carrier := pipeline.NewMessage(nil, nil)
	carrier.SetContext(ctx)
	_, err := resilience.Compose(func(ctx context.Context, m *pipeline.Message) (*pipeline.Message, error) {
		return m, call(ctx)
	}, ps...)(ctx, carrier)
	return err
}

// Report returns the cache and round-trip figures.
func (l *lookupStage) Report() []pipeline.Figure {
	s := l.loader.Stats()
	per := 0.0
	if s.RoundTrips > 0 {
		per = float64(s.KeysFetched) / float64(s.RoundTrips)
	}
	c := func(name, help string, v uint64) pipeline.Figure {
		return pipeline.Figure{Name: name, Help: help, Kind: pipeline.Counter, Value: float64(v)}
	}
	return []pipeline.Figure{
		c("cache_hits", "Keys answered by a fresh cache entry.", s.Hits),
		c("cache_misses", "Keys not answered by the cache: joined or made a round trip.", s.Misses),
		c("stale_served", "Keys answered by an expired entry because the store failed.", s.Stale),
		c("evictions", "Unexpired cache entries evicted to make room.", s.Evictions),
		c("round_trips", "Round trips to the store (retries inside one counted once).", s.RoundTrips),
		c("keys_fetched", "Keys asked of the store, over all round trips.", s.KeysFetched),
		c("refreshes", "Background refreshes started by refresh_ahead.", s.Refreshes),
		c("round_trip_failures", "Round trips that failed after their retries.", s.Failures),
		{Name: "keys_per_round_trip", Help: "Mean keys per round trip.", Kind: pipeline.Gauge, Value: per},
	}
}

// Stub replaces the store with fixed results by key text, for pipe test:
// keys absent from results are missing.
func (l *lookupStage) Stub(results map[string]any) error {
	norm := make(map[string]any, len(results))
	for k, v := range results {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("stub %s: %w", k, err)
		}
		if norm[k], err = expr.DecodeJSON(b); err != nil {
			return fmt.Errorf("stub %s: %w", k, err)
		}
	}
	loader, err := lookup.New(store.NewStatic(norm), l.lcfg)
	if err != nil {
		return err
	}
	_ = l.loader.Close()
	l.loader = loader
	return nil
}

// Close stops background refreshes and closes the store's connections.
func (l *lookupStage) Close(context.Context) error { return l.loader.Close() }
