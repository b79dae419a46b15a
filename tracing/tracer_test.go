package tracing_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
	"github.com/pipe-dsl/pipe/tracing"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorded runs p with a tracer at ratio and returns the ended spans.
func recorded(t *testing.T, p *pipeline.Pipeline, ratio float64) tracetest.SpanStubs {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(tracing.Sampler()))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	p.Tracer = tracing.NewTracer(tp, ratio)
	if err := p.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	return exp.GetSpans()
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func attr(s tracetest.SpanStub, k attribute.Key) attribute.Value {
	for _, a := range s.Attributes {
		if a.Key == k {
			return a.Value
		}
	}
	return attribute.Value{}
}

func byName(spans tracetest.SpanStubs, name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

func TestEveryStageSpanIsAChildOfTheSourceRoot(t *testing.T) {
	p := pipeline.New("orders")
	must(t, p.AddSource("in", "generate", pipelinetest.NewSource(`{"n":1}`, `{"n":2}`, `{"n":3}`)))
	must(t, p.AddStage("keep", "filter", pipelinetest.ProcessorFunc(func(_ context.Context, m *pipeline.Message) (*pipeline.Message, error) {
		if string(m.Body) == `{"n":2}` {
			return nil, nil
		}
		return m, nil
	}), pipeline.NodeOptions{}))
	must(t, p.AddStage("shape", "map", pipelinetest.ProcessorFunc(func(_ context.Context, m *pipeline.Message) (*pipeline.Message, error) {
		trace.SpanFromContext(m.Context()).AddEvent("shaped")
		return m, nil
	}), pipeline.NodeOptions{}))
	must(t, p.AddSink("out", "stdout", &pipelinetest.Sink{}, pipeline.NodeOptions{}))
	must(t, p.Connect("in", "", "keep"))
	must(t, p.Connect("keep", "", "shape"))
	must(t, p.Connect("shape", "", "out"))

	spans := recorded(t, p, 1)

	roots := byName(spans, "source in")
	if len(roots) != 3 {
		t.Fatalf("root spans = %d, want 3", len(roots))
	}
	for _, r := range roots {
		if r.Parent.IsValid() {
			t.Errorf("root %v has parent %v, want none", r.SpanContext.SpanID(), r.Parent.SpanID())
		}
		if r.SpanKind != trace.SpanKindConsumer {
			t.Errorf("root kind = %v, want consumer", r.SpanKind)
		}
		want := []string{"stage keep", "stage shape", "stage out"}
		if attr(r, tracing.AttrSeq).AsInt64() == 2 {
			want = want[:1]
		}
		var got []string
		for _, s := range spans {
			if s.Parent.SpanID() == r.SpanContext.SpanID() {
				got = append(got, s.Name)
				if s.SpanContext.TraceID() != r.SpanContext.TraceID() {
					t.Errorf("%s: trace %v, want root's %v", s.Name, s.SpanContext.TraceID(), r.SpanContext.TraceID())
				}
				if got, want := attr(s, tracing.AttrSeq).AsInt64(), attr(r, tracing.AttrSeq).AsInt64(); got != want {
					t.Errorf("%s: message.seq = %d, want the root's %d", s.Name, got, want)
				}
				if p := attr(s, tracing.AttrPipeline).AsString(); p != "orders" {
					t.Errorf("%s: pipe.pipeline = %q, want orders", s.Name, p)
				}
			}
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("children of root seq %d = %v, want %v", attr(r, tracing.AttrSeq).AsInt64(), got, want)
		}
	}
	keeps := byName(spans, "stage keep")
	dropped := 0
	for _, s := range keeps {
		if attr(s, tracing.AttrDropReason).AsString() == "filtered" {
			dropped++
		}
		if k := attr(s, tracing.AttrKind).AsString(); k != "filter" {
			t.Errorf("stage keep kind attribute = %q, want filter", k)
		}
	}
	if dropped != 1 {
		t.Errorf("keep spans with drop reason filtered = %d, want 1", dropped)
	}
	for _, s := range byName(spans, "stage shape") {
		if len(s.Events) != 1 || s.Events[0].Name != "shaped" {
			t.Errorf("stage shape events = %v, want the event the stage added", s.Events)
		}
	}
}

// batcher is a Stage that emits a batch of every n messages.
type batcher struct{ n int }

func (b batcher) Run(ctx context.Context, in <-chan *pipeline.Message, out pipeline.Outlet) error {
	var held []*pipeline.Message
	for m := range in {
		held = append(held, m)
		if len(held) == b.n {
			bm := pipeline.NewBatch(held)
			bm.Meta = map[string]string{tracing.MetaFlushReason: "size"}
			held = nil
			if err := out.Send(ctx, bm); err != nil {
				return err
			}
		}
	}
	return nil
}

func TestBatchSpanLinksEveryMemberInsteadOfAdoptingAParent(t *testing.T) {
	p := pipeline.New("b")
	must(t, p.AddSource("in", "generate", pipelinetest.NewSource("a", "b", "c", "d")))
	must(t, p.AddStage("group", "batch", batcher{n: 2}, pipeline.NodeOptions{}))
	must(t, p.AddSink("out", "file", &pipelinetest.Sink{}, pipeline.NodeOptions{}))
	must(t, p.Connect("in", "", "group"))
	must(t, p.Connect("group", "", "out"))

	spans := recorded(t, p, 1)

	var member, batch []tracetest.SpanStub
	for _, s := range byName(spans, "stage group") {
		if s.Parent.IsValid() {
			member = append(member, s)
		} else {
			batch = append(batch, s)
		}
	}
	if len(member) != 4 || len(batch) != 2 {
		t.Fatalf("stage group spans: %d member, %d batch; want 4 and 2", len(member), len(batch))
	}
	linked := map[trace.SpanID]bool{}
	for _, b := range batch {
		if n := attr(b, tracing.AttrBatchSize).AsInt64(); n != 2 {
			t.Errorf("batch.size = %d, want 2", n)
		}
		if r := attr(b, tracing.AttrFlushReason).AsString(); r != "size" {
			t.Errorf("batch.flush_reason = %q, want size", r)
		}
		if len(b.Links) != 2 {
			t.Errorf("batch links = %d, want 2", len(b.Links))
		}
		for _, l := range b.Links {
			linked[l.SpanContext.SpanID()] = true
		}
		sinks := 0
		for _, s := range byName(spans, "stage out") {
			if s.Parent.SpanID() == b.SpanContext.SpanID() {
				sinks++
			}
		}
		if sinks != 1 {
			t.Errorf("sink spans under batch span = %d, want 1", sinks)
		}
	}
	for _, m := range member {
		if !linked[m.SpanContext.SpanID()] {
			t.Errorf("member span %v is not linked from any batch span", m.SpanContext.SpanID())
		}
	}
	if roots := byName(spans, "source in"); len(roots) != 4 {
		t.Errorf("member root spans = %d, want 4 (each ends when its batch is acked)", len(roots))
	}
}

// metaSource sends one message with the given Meta.
type metaSource struct{ meta map[string]string }

func (s metaSource) Read(ctx context.Context, out pipeline.Outlet) error {
	m := pipeline.NewMessage([]byte("{}"), nil)
	m.Meta = s.meta
	return out.Send(ctx, m)
}

func propagated(t *testing.T, traceparent string) tracetest.SpanStubs {
	t.Helper()
	return propagatedMeta(t, map[string]string{"traceparent": traceparent, "tracestate": "vendor=1"}, &pipelinetest.Sink{})
}

func propagatedMeta(t *testing.T, meta map[string]string, sink pipeline.Sink) tracetest.SpanStubs {
	t.Helper()
	p := pipeline.New("prop")
	must(t, p.AddSource("in", "http", metaSource{meta}))
	must(t, p.AddSink("out", "drop", sink, pipeline.NodeOptions{}))
	must(t, p.Connect("in", "", "out"))
	return recorded(t, p, 0)
}

// Given headers written by Go's propagation.HeaderCarrier (canonical keys)
// and a baggage header, the source span continues the trace and the
// message's context carries the baggage on to the sinks.
func TestCanonicalTraceHeadersAndBaggageInMetaAreReadToo(t *testing.T) {
	var tenant string
	sink := &pipelinetest.Sink{Fail: func(m *pipeline.Message) error {
		tenant = baggage.FromContext(m.Context()).Member("tenant").Value()
		return nil
	}}
	spans := propagatedMeta(t, map[string]string{
		"Traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"Tracestate":  "vendor=1", "Baggage": "tenant=acme",
	}, sink)
	roots := byName(spans, "source in")
	if len(roots) != 1 || roots[0].SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("root spans = %+v, want one in the incoming trace", roots)
	}
	if got := roots[0].SpanContext.TraceState().Get("vendor"); got != "1" {
		t.Errorf("tracestate vendor = %q, want 1", got)
	}
	if tenant != "acme" {
		t.Errorf("baggage tenant at the sink = %q, want acme", tenant)
	}
}

func TestSampledTraceparentInMetaBecomesTheRootsParent(t *testing.T) {
	spans := propagated(t, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	roots := byName(spans, "source in")
	if len(roots) != 1 {
		t.Fatalf("root spans = %d, want 1 (a sampled parent wins over ratio 0)", len(roots))
	}
	r := roots[0]
	if got := r.SpanContext.TraceID().String(); got != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("trace ID = %s, want the incoming one", got)
	}
	if got := r.Parent.SpanID().String(); got != "00f067aa0ba902b7" || !r.Parent.IsRemote() {
		t.Errorf("parent = %s (remote %v), want remote 00f067aa0ba902b7", got, r.Parent.IsRemote())
	}
	if got := r.SpanContext.TraceState().Get("vendor"); got != "1" {
		t.Errorf("tracestate vendor = %q, want 1", got)
	}
	if len(byName(spans, "stage out")) != 1 {
		t.Errorf("sink spans = %d, want 1", len(byName(spans, "stage out")))
	}
}

func TestUnsampledTraceparentInMetaStaysUnsampled(t *testing.T) {
	spans := propagated(t, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
	if len(spans) != 0 {
		t.Errorf("spans = %d, want 0", len(spans))
	}
}

func TestRatioZeroTracesNothing(t *testing.T) {
	p := pipeline.New("z")
	sink := &pipelinetest.Sink{}
	must(t, p.AddSource("in", "generate", pipelinetest.NewSource("a", "b")))
	must(t, p.AddSink("out", "drop", sink, pipeline.NodeOptions{}))
	must(t, p.Connect("in", "", "out"))
	if spans := recorded(t, p, 0); len(spans) != 0 {
		t.Errorf("spans = %d, want 0", len(spans))
	}
	if sink.Writes() != 2 {
		t.Errorf("writes = %d, want 2", sink.Writes())
	}
}

func TestDeadLetteredMessageEndsWithErrorStatusAndItsReason(t *testing.T) {
	p := pipeline.New("dl")
	dlq := &pipelinetest.Sink{}
	must(t, p.AddSource("in", "generate", pipelinetest.NewSource("not json")))
	must(t, p.AddStage("parse", "map", pipelinetest.ProcessorFunc(func(_ context.Context, m *pipeline.Message) (*pipeline.Message, error) {
		return nil, pipeline.WithReason("invalid_payload", errors.New("not an object"))
	}), pipeline.NodeOptions{}))
	must(t, p.AddSink("out", "drop", &pipelinetest.Sink{}, pipeline.NodeOptions{}))
	must(t, p.SetDeadLetter("file", dlq, pipeline.NodeOptions{}))
	must(t, p.Connect("in", "", "parse"))
	must(t, p.Connect("parse", "", "out"))

	spans := recorded(t, p, 1)

	roots := byName(spans, "source in")
	if len(roots) != 1 {
		t.Fatalf("root spans = %d, want 1", len(roots))
	}
	r := roots[0]
	if r.Status.Code != codes.Error || !strings.HasPrefix(r.Status.Description, "invalid_payload") {
		t.Errorf("root status = %v %q, want error starting with invalid_payload", r.Status.Code, r.Status.Description)
	}
	stage := byName(spans, "stage parse")
	if len(stage) != 1 || stage[0].Status.Code != codes.Error || attr(stage[0], tracing.AttrReason).AsString() != "invalid_payload" {
		t.Errorf("stage parse span = %+v, want error status with pipe.reason invalid_payload", stage)
	}
	if n := len(byName(spans, "stage dead_letter")); n != 1 {
		t.Errorf("dead_letter spans = %d, want 1", n)
	}
	bodies := dlq.Bodies()
	if len(bodies) != 1 {
		t.Fatalf("dead letters = %d, want 1", len(bodies))
	}
	var d pipeline.DeadLetter
	must(t, json.Unmarshal([]byte(bodies[0]), &d))
	if want := r.SpanContext.TraceID().String(); d.TraceID != want {
		t.Errorf("dead letter trace_id = %q, want %q", d.TraceID, want)
	}
}
