package resilience

import "github.com/pipe-dsl/pipe/pipeline"

var (
	_ pipeline.Reporter = (*Breaker)(nil)
	_ pipeline.Reporter = (*sink)(nil)
	_ pipeline.Reporter = (*processor)(nil)
)

// Report gives the breaker's state (0 closed, 1 half-open, 2 open, as
// [State]) and its transitions and rejections.
func (b *Breaker) Report() []pipeline.Figure {
	s := b.Stats()
	return []pipeline.Figure{
		{Name: "breaker_state", Help: "Circuit breaker state: 0 closed, 1 half-open, 2 open.", Kind: pipeline.Gauge, Value: float64(s.State)},
		{Name: "breaker_transitions", Help: "Circuit breaker transitions by the state entered.", Kind: pipeline.Counter, Label: "to", LabelValue: "open", Value: float64(s.Opened)},
		{Name: "breaker_transitions", Help: "Circuit breaker transitions by the state entered.", Kind: pipeline.Counter, Label: "to", LabelValue: "half_open", Value: float64(s.HalfOpened)},
		{Name: "breaker_transitions", Help: "Circuit breaker transitions by the state entered.", Kind: pipeline.Counter, Label: "to", LabelValue: "closed", Value: float64(s.Closed)},
		{Name: "breaker_rejected", Help: "Calls refused while the circuit breaker was open.", Kind: pipeline.Counter, Value: float64(s.Rejected)},
	}
}

// Report gives the wrapped sink's figures, then its policies'.
func (s *sink) Report() []pipeline.Figure { return figures(s.inner, s.policies) }

// Report gives the wrapped processor's figures, then its policies'.
func (p *processor) Report() []pipeline.Figure { return figures(p.inner, p.policies) }

func figures(inner any, policies []Policy) []pipeline.Figure {
	var out []pipeline.Figure
	if r, ok := inner.(pipeline.Reporter); ok {
		out = append(out, r.Report()...)
	}
	for _, p := range policies {
		if r, ok := p.(pipeline.Reporter); ok {
			out = append(out, r.Report()...)
		}
	}
	return out
}
