package amqp

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/connectors/internal/conntest"
	"github.com/pipe-dsl/pipe/pipeline"
)

func testSink(t *testing.T, c sinkConfig) *sink {
	t.Helper()
	if c.URL == "" {
		c.URL = DefaultURL
	}
	s, err := newSink(&c, component.Env{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.(*sink).Close(context.Background()) })
	return s.(*sink)
}

func TestSinkBatchIsConfirmedWithHeaders(t *testing.T) {
	b := needBroker(t)
	q := b.queue("sink")
	s := testSink(t, sinkConfig{Queue: q, Persistent: true})
	want := bodies("s", 50)
	var members []*pipeline.Message
	for _, body := range want {
		m := pipeline.NewMessage([]byte(body), nil)
		m.Meta = map[string]string{"traceparent": "00-abc-def-01", "amqp_routing_key": "not a header"}
		members = append(members, m)
	}
	conntest.Traced(t, members[0]) // its span's context replaces the incoming one
	if err := s.Write(context.Background(), pipeline.NewBatch(members)); err != nil {
		t.Fatalf("Write(batch) = %v", err)
	}
	// Write returned after the confirms: every message is in the queue now.
	if n := b.depth(q); n != len(want) {
		t.Fatalf("queue depth after Write = %d, want %d", n, len(want))
	}
	var got []string
	for _, d := range b.consume(q, len(want)) {
		got = append(got, string(d.Body))
		tp := "00-abc-def-01"
		if string(d.Body) == want[0] {
			tp = conntest.TracedTraceparent
		}
		if d.Headers["traceparent"] != tp {
			t.Fatalf("headers = %v, want traceparent %s", d.Headers, tp)
		}
		if _, ok := d.Headers["amqp_routing_key"]; ok {
			t.Fatalf("headers = %v: amqp_* metadata must not become headers", d.Headers)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("consumed %q, want %q", got, want)
	}
}

func TestSinkFailsUnconfirmedPublishAndRecovers(t *testing.T) {
	b := needBroker(t)
	q := b.queue("sinkfail")
	bad := testSink(t, sinkConfig{Exchange: "pipe-test-no-such-exchange", RoutingKey: "x"})
	err := bad.Write(context.Background(), pipeline.NewMessage([]byte("lost"), nil))
	if err == nil {
		t.Fatal("Write to a missing exchange = nil, want an error")
	}
	if strings.Contains(err.Error(), "guest:guest") {
		t.Fatalf("error %q shows credentials", err)
	}
	// The channel was closed by the broker; the next Write reconnects.
	bad.cfg.Exchange, bad.key = "", q
	if err := bad.Write(context.Background(), pipeline.NewMessage([]byte("kept"), nil)); err != nil {
		t.Fatalf("Write after a channel error = %v, want a reconnection", err)
	}
	if d := b.consume(q, 1); string(d[0].Body) != "kept" {
		t.Fatalf("consumed %q, want kept", d[0].Body)
	}
}

func TestSinkConfigErrors(t *testing.T) {
	for _, c := range []sinkConfig{
		{URL: DefaultURL}, // nowhere to route
		{URL: DefaultURL, Exchange: "e", Declare: true}, // declare without queue
		{URL: "http://example.com"},                     // not amqp
	} {
		if _, err := newSink(&c, component.Env{}); err == nil {
			t.Errorf("newSink(%+v) = nil error", c)
		} else if strings.Contains(err.Error(), "example.com") {
			t.Errorf("error %q echoes the url", err)
		}
	}
}

func TestRoundTripThroughTwoQueues(t *testing.T) {
	b := needBroker(t)
	in, out := b.queue("rt-in"), b.queue("rt-out")
	want := bodies("rt", 200)
	b.publish(in, want, nil)
	src := testSource(t, in)
	snk := testSink(t, sinkConfig{Queue: out, Persistent: true})
	stop := run(t, src, snk, nil)
	var got []string
	for _, d := range b.consume(out, len(want)) {
		got = append(got, string(d.Body))
	}
	stop()
	slices.Sort(got)
	if !slices.Equal(slices.Compact(got), sorted(want)) {
		t.Fatalf("round trip delivered %d distinct messages, want %d", len(slices.Compact(got)), len(want))
	}
	if n := b.depth(in); n != 0 {
		t.Fatalf("input queue holds %d messages, want 0", n)
	}
}

func TestRedactKeepsNoCredentials(t *testing.T) {
	for in, want := range map[string]string{
		"amqp://guest:guest@127.0.0.1:5672/":      "amqp://127.0.0.1:5672/",
		"amqps://u:p%40ss@rabbit.internal/orders": "amqps://rabbit.internal:5671/orders",
		"amqp://u:pw@h:1/a%2Fb":                   "amqp://h:1/a%2Fb",
	} {
		got, err := redact(in)
		if err != nil || got != want {
			t.Errorf("redact(%q) = %q, %v, want %q", in, got, err, want)
		}
	}
}
