package conntest

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/pipe-dsl/pipe/pipeline"
)

// TracedTraceparent is the traceparent of the span [Traced] gives a message.
const TracedTraceparent = "00-0102030405060708090a0b0c0d0e0f10-1112131415161718-01"

// Traced installs the W3C trace context propagator for the test, as
// `pipe run` does, and puts m in a sampled span whose traceparent is
// TracedTraceparent: a sink must send that one, not an incoming
// Meta["traceparent"].
func Traced(t testing.TB, m *pipeline.Message) {
	t.Helper()
	prev := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { otel.SetTextMapPropagator(prev) })
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		SpanID:     trace.SpanID{17, 18, 19, 20, 21, 22, 23, 24},
		TraceFlags: trace.FlagsSampled,
	})
	m.SetContext(trace.ContextWithSpanContext(context.Background(), sc))
}
