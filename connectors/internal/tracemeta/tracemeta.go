// Package tracemeta gives broker sinks the metadata to send as headers: a
// message's Meta with the trace context of its span injected.
package tracemeta

import (
	"maps"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/pipe-dsl/pipe/pipeline"
)

// Outgoing returns m.Meta with the context of m's current span (and its
// baggage) written by the global propagator, which package tracing sets to
// W3C trace context and baggage: traceparent, tracestate and baggage keys,
// replacing any that came in, so the next service continues the trace from
// pipe's span. Without a span or baggage it returns m.Meta itself; otherwise
// a copy, leaving m.Meta unchanged (it may be shared with broadcast copies).
func Outgoing(m *pipeline.Message) map[string]string {
	ctx := m.Context()
	if !trace.SpanContextFromContext(ctx).IsValid() && baggage.FromContext(ctx).Len() == 0 {
		return m.Meta
	}
	c := make(propagation.MapCarrier, len(m.Meta)+3)
	maps.Copy(c, m.Meta)
	otel.GetTextMapPropagator().Inject(ctx, c)
	return c
}
