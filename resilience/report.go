package resilience

import "github.com/pipe-dsl/pipe/pipeline"

// Figures of the policies, exported by package metrics as
// pipe_breaker_state, pipe_breaker_transitions_total{to},
// pipe_breaker_rejected_total and pipe_retry_attempts_total{outcome}.
var (
	_ pipeline.Reporter = (*Breaker)(nil)
	_ pipeline.Reporter = (*Retry)(nil)
	_ pipeline.Reporter = (*sink)(nil)
	_ pipeline.Reporter = (*processor)(nil)
)

// Report returns the breaker's state (0 closed, 1 half-open, 2 open), its
// transitions by the state entered, and the calls it rejected.
func (b *Breaker) Report() []pipeline.Figure {
	s := b.Stats()
	const transHelp = "Circuit breaker transitions, by the state entered."
	tr := func(to string, v int64) pipeline.Figure {
		return pipeline.Figure{Scope: "breaker", Name: "transitions", Help: transHelp, Kind: pipeline.Counter,
			Label: "to", LabelValue: to, Value: float64(v)}
	}
	return []pipeline.Figure{
		{Scope: "breaker", Name: "state", Help: "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
			Kind: pipeline.Gauge, Value: float64(s.State)},
		tr("open", s.Opened), tr("half_open", s.HalfOpened), tr("closed", s.Closed),
		{Scope: "breaker", Name: "rejected", Help: "Calls failed at once with circuit_open while the breaker was open.",
			Kind: pipeline.Counter, Value: float64(s.Rejected)},
	}
}

// Report returns the attempts made, by outcome: ok (the call worked,
// dropped or partly refused on purpose), retried (failed and tried again),
// exhausted (failed the last attempt allowed), not_retryable (retry_on
// said no) and canceled (the run stopped under it).
func (r *Retry) Report() []pipeline.Figure {
	s := r.Stats()
	const help = "Attempts of a call under retry, by outcome."
	f := func(outcome string, v int64) pipeline.Figure {
		return pipeline.Figure{Scope: "retry", Name: "attempts", Help: help, Kind: pipeline.Counter,
			Label: "outcome", LabelValue: outcome, Value: float64(v)}
	}
	return []pipeline.Figure{
		f("ok", s.Succeeded), f("retried", s.Retries), f("exhausted", s.Exhausted),
		f("not_retryable", s.NotRetried), f("canceled", s.Canceled),
	}
}

func (s *sink) Report() []pipeline.Figure      { return reportAll(s.inner, s.policies) }
func (p *processor) Report() []pipeline.Figure { return reportAll(p.inner, p.policies) }

// reportAll returns the figures of the wrapped node, then of its policies.
func reportAll(inner any, policies []Policy) []pipeline.Figure {
	var out []pipeline.Figure
	if r, ok := inner.(pipeline.Reporter); ok {
		out = r.Report()
	}
	for _, p := range policies {
		if r, ok := p.(pipeline.Reporter); ok {
			out = append(out, r.Report()...)
		}
	}
	return out
}
