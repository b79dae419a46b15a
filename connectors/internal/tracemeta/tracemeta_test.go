package tracemeta_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/pipe-dsl/pipe/connectors/internal/tracemeta"
	"github.com/pipe-dsl/pipe/pipeline"
)

func TestOutgoingReplacesTheIncomingTraceparentWithTheMessagesSpan(t *testing.T) {
	prev := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(propagation.TraceContext{})
	defer otel.SetTextMapPropagator(prev)

	m := pipeline.NewMessage([]byte("x"), nil)
	m.Meta = map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "k": "v"}
	if got := tracemeta.Outgoing(m); got["traceparent"] != m.Meta["traceparent"] || got["k"] != "v" {
		t.Fatalf("Outgoing(no span) = %v, want Meta unchanged", got)
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled})
	m.SetContext(trace.ContextWithSpanContext(context.Background(), sc))
	got := tracemeta.Outgoing(m)
	if want := "00-01000000000000000000000000000000-0200000000000000-01"; got["traceparent"] != want || got["k"] != "v" {
		t.Errorf("Outgoing(span) = %v, want traceparent %s and k", got, want)
	}
	if m.Meta["traceparent"] != "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" {
		t.Errorf("Outgoing changed m.Meta: %v", m.Meta)
	}
}
