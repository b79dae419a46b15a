package lookup

import (
	"context"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

// Given two traced messages coalesced into one round trip, then there is
// one round-trip span linked to both message spans, and each message span
// carries its cache outcome.
func TestGivenTracedMessagesWhenCoalescedThenOneRoundTripSpanLinksEach(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	clock := pipelinetest.NewFakeClock(t0)
	s := &fakeStore{vals: map[string]any{"a": 1, "b": 2}}
	l := newLoader(t, s, Config{MaxKeys: 2, MaxWait: time.Hour, Clock: clock, Store: "fake"})
	var wg sync.WaitGroup
	for _, k := range []string{"a", "b"} {
		wg.Go(func() {
			ctx, span := tp.Tracer("test").Start(context.Background(), "msg "+k)
			res, err := l.Get(context.Background(), Request{Key: k, Arg: k, Trace: ctx})
			Annotate(ctx, res, err)
			span.End()
		})
	}
	wg.Wait()
	var trips, msgs []tracetest.SpanStub
	for _, sp := range exp.GetSpans() {
		if sp.Name == "lookup fake" {
			trips = append(trips, sp)
		} else {
			msgs = append(msgs, sp)
		}
	}
	if len(trips) != 1 || len(msgs) != 2 {
		t.Fatalf("spans: %d round trips, %d messages; want 1 and 2", len(trips), len(msgs))
	}
	linked := map[string]bool{}
	for _, ln := range trips[0].Links {
		linked[ln.SpanContext.SpanID().String()] = true
	}
	for _, m := range msgs {
		if !linked[m.SpanContext.SpanID().String()] {
			t.Errorf("round trip span does not link %s", m.Name)
		}
		if len(m.Events) != 1 || m.Events[0].Name != "lookup" {
			t.Fatalf("%s events = %+v, want one lookup event", m.Name, m.Events)
		}
		var outcome string
		for _, a := range m.Events[0].Attributes {
			if a.Key == "lookup.cache" {
				outcome = a.Value.AsString()
			}
		}
		if outcome != "miss" {
			t.Errorf("%s lookup.cache = %q, want miss", m.Name, outcome)
		}
	}
}
