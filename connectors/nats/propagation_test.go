package nats_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"

	"github.com/pipe-dsl/pipe/tracing"
)

// traceOn sets up tracing as pipe run does (exporting to nowhere) and
// restores the global propagator after the test.
func traceOn(t *testing.T) *tracing.Provider {
	t.Helper()
	prev := otel.GetTextMapPropagator()
	t.Cleanup(func() { otel.SetTextMapPropagator(prev) })
	prov, err := tracing.New(context.Background(), tracing.Config{Exporter: "stdout", Stdout: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = prov.Shutdown(context.Background()) })
	return prov
}

// traceparentParts splits a W3C traceparent into trace and span ids.
func traceparentParts(t *testing.T, tp string) (traceID, spanID string) {
	t.Helper()
	p := strings.Split(tp, "-")
	if len(p) != 4 || len(p[1]) != 32 || len(p[2]) != 16 {
		t.Fatalf("traceparent %q is not W3C", tp)
	}
	return p[1], p[2]
}

// Given a message published with a traceparent and one without, when pipe
// moves them from NATS to NATS, then the first arrives in the same trace,
// as a child of pipe's span, and the second in a trace pipe started.
func TestNATSToNATSContinuesTheIncomingTraceDownstream(t *testing.T) {
	js := server(t)
	in, out := unique(t), unique(t)+"_out"
	newStream(t, js, in)
	newStream(t, js, out)
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	for _, m := range []*natsgo.Msg{
		{Subject: in + ".a", Data: []byte(`{"n":1}`), Header: natsgo.Header{"traceparent": {"00-" + traceID + "-" + parentID + "-01"}}},
		{Subject: in + ".a", Data: []byte(`{"n":2}`)},
	} {
		if _, err := js.PublishMsg(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	prov := traceOn(t)
	p := compile(t, fmt.Sprintf(`
name: propagate
source:
  nats_jetstream: {stream: %s, durable: pipe, create: true}
sink:
  nats_jetstream: {subject: %s.a}
`, in, out), nil)
	p.Tracer = prov.Tracer
	stop := start(t, p)

	cons, err := js.CreateOrUpdateConsumer(t.Context(), out, jetstream.ConsumerConfig{AckPolicy: jetstream.AckNonePolicy})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{} // body -> traceparent
	for len(got) < 2 {
		msg, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got[string(msg.Data())] = msg.Headers().Get("traceparent")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if tid, sid := traceparentParts(t, got[`{"n":1}`]); tid != traceID || sid == parentID {
		t.Errorf("traced message arrived with trace %s span %s; want trace %s and pipe's span, not the incoming %s", tid, sid, traceID, parentID)
	}
	if tid, _ := traceparentParts(t, got[`{"n":2}`]); tid == traceID {
		t.Errorf("untraced message arrived in the other message's trace %s", tid)
	}
}
