package resilience

import (
	"context"

	"github.com/pipe-dsl/pipe/pipeline"
)

// Call is one attempt at handling m: a sink's Write or a stage's Process.
// For a sink the result is m itself on success.
type Call func(ctx context.Context, m *pipeline.Message) (*pipeline.Message, error)

// A Policy wraps a Call in behaviour such as retrying, a circuit breaker or
// a deadline. *Retry, *Breaker and Timeout are Policies.
type Policy interface {
	Wrap(next Call) Call
}

// Compose wraps call in policies, the first outermost, the way failsafe-go's
// Fallback(Retry(Breaker(fn))) reads: Compose(call, retry, breaker,
// timeout) retries attempts that each pass the breaker and each have the
// timeout. That is the order the DSL uses and the one most callers want. Nil
// policies are skipped.
func Compose(call Call, policies ...Policy) Call {
	ps := nonNil(policies)
	for i := len(ps) - 1; i >= 0; i-- {
		call = ps[i].Wrap(call)
	}
	return call
}

func nonNil(policies []Policy) []Policy {
	var out []Policy
	for _, p := range policies {
		if p != nil && !isNilPolicy(p) {
			out = append(out, p)
		}
	}
	return out
}

func isNilPolicy(p Policy) bool {
	switch p := p.(type) {
	case *Retry:
		return p == nil
	case *Breaker:
		return p == nil
	}
	return false
}

// Sink returns s with policies applied to every Write, the first outermost
// (see Compose). The result forwards Close and Check to s.
func Sink(s pipeline.Sink, policies ...Policy) pipeline.Sink {
	call := Compose(func(ctx context.Context, m *pipeline.Message) (*pipeline.Message, error) {
		return m, s.Write(ctx, m)
	}, policies...)
	return &sink{inner: s, call: call, policies: nonNil(policies)}
}

// Processor returns p with policies applied to every Process, the first
// outermost (see Compose). A retried Process sees the message as the failed
// attempt left it, so p should not change m before it fails. The result
// forwards Close to p.
func Processor(p pipeline.Processor, policies ...Policy) pipeline.Processor {
	return &processor{inner: p, call: Compose(p.Process, policies...), policies: nonNil(policies)}
}

// Guarded is implemented by components that apply their retry, breaker and
// timeout policies themselves, around their own calls to a peer, rather
// than around each message: the lookup stage guards each round trip to
// its store, so cache hits pass while its breaker is open. The DSL hands
// such a component its policies (outermost first, nils included) instead
// of wrapping it.
type Guarded interface {
	Guard(policies ...Policy)
}

// Wrapped is implemented by the values Sink and Processor return, so
// metrics can reach the policies (Breaker.State, Retry.Stats) of a node.
type Wrapped interface {
	// Policies returns the non-nil policies, outermost first.
	Policies() []Policy
}

type sink struct {
	inner    pipeline.Sink
	call     Call
	policies []Policy
}

var (
	_ pipeline.Sink    = (*sink)(nil)
	_ pipeline.Closer  = (*sink)(nil)
	_ pipeline.Checker = (*sink)(nil)
	_ Wrapped          = (*sink)(nil)
)

func (s *sink) Write(ctx context.Context, m *pipeline.Message) error {
	_, err := s.call(ctx, m)
	return err
}

func (s *sink) Policies() []Policy { return s.policies }

func (s *sink) Close(ctx context.Context) error { return closeInner(ctx, s.inner) }

// Check forwards to the inner sink, if it is a [pipeline.Checker]: the
// policies do not apply to the check.
func (s *sink) Check(ctx context.Context) error {
	if c, ok := s.inner.(pipeline.Checker); ok {
		return c.Check(ctx)
	}
	return nil
}

type processor struct {
	inner    pipeline.Processor
	call     Call
	policies []Policy
}

var (
	_ pipeline.Processor = (*processor)(nil)
	_ pipeline.Closer    = (*processor)(nil)
	_ Wrapped            = (*processor)(nil)
)

func (p *processor) Process(ctx context.Context, m *pipeline.Message) (*pipeline.Message, error) {
	return p.call(ctx, m)
}

func (p *processor) Policies() []Policy { return p.policies }

func (p *processor) Close(ctx context.Context) error { return closeInner(ctx, p.inner) }

func closeInner(ctx context.Context, v any) error {
	if c, ok := v.(pipeline.Closer); ok {
		return c.Close(ctx)
	}
	return nil
}
