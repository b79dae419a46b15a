package amqp

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/connectors/internal/conntest"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

// collector is the shared recording sink.
type collector = conntest.Collector

var newCollector = conntest.NewCollector

// run starts a pipeline from src to sink (and dlq, if not nil) and returns
// a stop function that soft-stops it and waits until the source's
// connections are closed.
func run(t *testing.T, src *source, sink pipeline.Sink, dlq pipeline.Sink) (stop func()) {
	t.Helper()
	p := pipeline.New("t")
	if err := p.AddSource("in", "amqp", src); err != nil {
		t.Fatal(err)
	}
	if err := p.AddSink("out", "test", sink, pipeline.NodeOptions{Workers: 4}); err != nil {
		t.Fatal(err)
	}
	if err := p.Connect("in", "", "out"); err != nil {
		t.Fatal(err)
	}
	if dlq != nil {
		if err := p.SetDeadLetter("test", dlq, pipeline.NodeOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run = %v", err)
			}
			src.bg.Wait()
		})
	}
	t.Cleanup(stop)
	return stop
}

func testSource(t *testing.T, queue string) *source {
	t.Helper()
	s, err := newSource(&sourceConfig{URL: DefaultURL, Queue: queue, Prefetch: 16, Reconnect: time.Second}, component.Env{Node: "in"})
	if err != nil {
		t.Fatal(err)
	}
	return s.(*source)
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestSourceAcksEveryDeliveredMessage(t *testing.T) {
	b := needBroker(t)
	q := b.queue("ack")
	want := bodies("n", 300)
	tp := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	b.publish(q, want, amqp091.Table{"traceparent": tp, "attempt": int32(3)})
	sink := newCollector(len(want))
	stop := run(t, testSource(t, q), sink, nil)
	waitFor(t, sink.Full, "every message at the sink")
	stop()
	if got := sink.Delivered(); !slices.Equal(got, sorted(want)) {
		t.Fatalf("delivered %d messages, want the %d published", len(got), len(want))
	}
	meta := sink.Metas[want[0]]
	if meta["traceparent"] != tp || meta["attempt"] != "3" || meta["amqp_routing_key"] != q {
		t.Errorf("meta = %v, want traceparent, attempt=3 and the routing key", meta)
	}
	if n := b.depth(q); n != 0 {
		t.Fatalf("queue holds %d messages after the run, want 0 (all acked)", n)
	}
}

func TestSourceMessageFailedBySinkIsRedelivered(t *testing.T) {
	b := needBroker(t)
	q := b.queue("nack")
	b.publish(q, []string{"a", "b", "c"}, nil)
	sink := newCollector(3)
	sink.Fail = func(m *pipeline.Message, attempt int) error {
		if string(m.Body) == "b" && attempt == 1 {
			return errors.New("sink down")
		}
		return nil
	}
	stop := run(t, testSource(t, q), sink, nil) // no dead-letter sink: b is nacked
	waitFor(t, sink.Full, "every message at the sink")
	stop()
	if sink.Seen["b"] != 2 {
		t.Errorf("b was written %d times, want 2 (failed, then redelivered)", sink.Seen["b"])
	}
	if sink.Metas["b"]["amqp_redelivered"] != "true" {
		t.Errorf("second delivery of b has meta %v, want amqp_redelivered=true", sink.Metas["b"])
	}
	if n := b.depth(q); n != 0 {
		t.Fatalf("queue holds %d messages, want 0", n)
	}
}

func TestSourcePoisonMessageIsDeadLetteredNotRedelivered(t *testing.T) {
	b := needBroker(t)
	q := b.queue("poison")
	b.publish(q, []string{"ok1", "poison", "ok2"}, nil)
	sink := newCollector(2)
	sink.Fail = func(m *pipeline.Message, _ int) error {
		if string(m.Body) == "poison" {
			return errors.New("cannot handle")
		}
		return nil
	}
	dlq := &pipelinetest.Sink{Entered: make(chan struct{}, 8)}
	stop := run(t, testSource(t, q), sink, dlq)
	waitFor(t, sink.Full, "every message at the sink")
	waitFor(t, dlq.Entered, "the dead letter")
	stop()
	if sink.Seen["poison"] != 1 {
		t.Errorf("poison was tried %d times, want 1", sink.Seen["poison"])
	}
	if n := len(dlq.Bodies()); n != 1 {
		t.Errorf("dead letters = %d, want 1", n)
	}
	if n := b.depth(q); n != 0 {
		t.Fatalf("queue holds %d messages, want 0: the dead-lettered one was acked", n)
	}
}

func TestSourceReconnectsAfterConnectionDropLosingNothing(t *testing.T) {
	b := needBroker(t)
	q := b.queue("drop")
	want := bodies("d", 500)
	b.publish(q, want, nil)

	src := testSource(t, q)
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	src.onDial = func(c net.Conn) { mu.Lock(); conns = append(conns, c); mu.Unlock() }
	sink := newCollector(len(want))
	var once sync.Once
	sink.Fail = func(_ *pipeline.Message, _ int) error {
		if len(sink.Metas) == 100 {
			// Cut the TCP connection under the client, as a network
			// failure would.
			once.Do(func() { mu.Lock(); conns[0].Close(); mu.Unlock() })
		}
		return nil
	}
	stop := run(t, src, sink, nil)
	waitFor(t, sink.Full, "every message at the sink")
	stop()
	mu.Lock()
	dials := len(conns)
	mu.Unlock()
	if dials < 2 {
		t.Fatalf("dialled %d times, want a reconnection", dials)
	}
	if got := sink.Delivered(); !slices.Equal(got, sorted(want)) {
		t.Fatalf("delivered %d distinct messages, want %d", len(got), len(want))
	}
	if n := b.depth(q); n != 0 {
		t.Fatalf("queue holds %d messages, want 0", n)
	}
}

func TestSourceMissingQueueEndsRead(t *testing.T) {
	needBroker(t)
	src := testSource(t, "pipe-test-no-such-queue")
	err := src.Read(context.Background(), nil)
	var ae *amqp091.Error
	if !errors.As(err, &ae) || ae.Code != amqp091.NotFound {
		t.Fatalf("Read = %v, want a NOT_FOUND error", err)
	}
}

// waitFor fails the test if ch yields nothing within 30s.
func waitFor[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func TestSourceHardStopRequeuesWhatWasInFlight(t *testing.T) {
	b := needBroker(t)
	q := b.queue("kill")
	b.publish(q, []string{"a", "b", "c"}, nil)
	src := testSource(t, q)
	sink := &pipelinetest.Sink{Gate: make(chan struct{}), Entered: make(chan struct{}, 3)}
	p := pipeline.New("t")
	if err := p.AddSource("in", "amqp", src); err != nil {
		t.Fatal(err)
	}
	if err := p.AddSink("out", "test", sink, pipeline.NodeOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := p.Connect("in", "", "out"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	waitFor(t, sink.Entered, "the first write")
	cancel() // soft stop: the sink is stuck, so it cannot finish
	p.Kill() // hard stop: abandon what is in flight
	err := <-done
	if _, ok := errors.AsType[*pipeline.AbandonedError](err); !ok {
		t.Fatalf("Run = %v, want an *AbandonedError", err)
	}
	src.bg.Wait()
	if n := b.depth(q); n != 3 {
		t.Fatalf("queue holds %d messages after the hard stop, want all 3 back", n)
	}
}

func TestSourceSoftStopAcksExactlyWhatWasDelivered(t *testing.T) {
	b := needBroker(t)
	q := b.queue("soft")
	b.publish(q, bodies("s", 200), nil)
	sink := newCollector(10) // full after 10 distinct messages
	stop := run(t, testSource(t, q), sink, nil)
	waitFor(t, sink.Full, "ten messages at the sink")
	stop()
	delivered := len(sink.Delivered())
	if n := b.depth(q); n+delivered != 200 {
		t.Fatalf("after the stop: %d delivered + %d left in the queue = %d, want 200", delivered, n, n+delivered)
	}
	if delivered >= 200 {
		t.Fatalf("delivered all %d messages: the stop did not stop consuming", delivered)
	}
}
