package mqtt

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/connectors/internal/conntest"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

// collector is the shared recording sink.
type collector = conntest.Collector

var newCollector = conntest.NewCollector

// run starts a pipeline from src to sink (and dlq, if not nil) with four
// sink workers, so acks come out of order. stop soft-stops it and waits
// until the source has sent its last acks and disconnected.
func run(t *testing.T, src *source, sink pipeline.Sink, dlq pipeline.Sink) (stop func()) {
	t.Helper()
	p := pipeline.New("t")
	if err := p.AddSource("in", "mqtt", src); err != nil {
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

func testSource(t *testing.T, id, topic string) *source {
	t.Helper()
	s, err := newSource(&sourceConfig{Broker: DefaultBroker, Topic: topic, ClientID: id, SessionExpiry: 10 * time.Minute,
		InFlight: 32, KeepAlive: 30 * time.Second, Reconnect: time.Second}, component.Env{Node: "in"})
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

func TestSourceDeliversAndAcksEveryMessage(t *testing.T) {
	needBroker(t)
	id, topic := unique("src"), unique("topic")
	session(t, id, topic)
	want := bodies("n", 300)
	tp := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	connect(t, unique("pub"), true, 0).publish(t, topic, want, map[string]string{"traceparent": tp})

	sink := newCollector(len(want))
	stop := run(t, testSource(t, id, topic), sink, nil)
	waitFor(t, sink.Full, "every message at the sink")
	stop()
	if got := sink.Delivered(); !slices.Equal(got, sorted(want)) {
		t.Fatalf("delivered %d messages, want the %d published", len(got), len(want))
	}
	if meta := sink.Metas[want[0]]; meta["traceparent"] != tp || meta["mqtt_topic"] != topic {
		t.Errorf("meta = %v, want traceparent and mqtt_topic", meta)
	}
	assertSessionEmpty(t, id, topic)
}

func TestSourceNackedMessageIsRedelivered(t *testing.T) {
	needBroker(t)
	id, topic := unique("src"), unique("topic")
	session(t, id, topic)
	connect(t, unique("pub"), true, 0).publish(t, topic, []string{"a", "b", "c"}, nil)
	sink := newCollector(3)
	sink.Fail = func(m *pipeline.Message, attempt int) error {
		if string(m.Body) == "b" && attempt == 1 {
			return errors.New("sink down")
		}
		return nil
	}
	stop := run(t, testSource(t, id, topic), sink, nil) // no dead-letter sink: b is nacked
	waitFor(t, sink.Full, "every message at the sink")
	stop()
	if sink.Seen["b"] < 2 {
		t.Errorf("b was written %d times, want 2 or more (failed, then redelivered)", sink.Seen["b"])
	}
	// The nack dropped the connection, and with it c's ack when c came
	// after b: the broker redelivers c too, maybe after the pipeline stopped.
	assertSessionHoldsOnlyDuplicates(t, id, topic, []string{"a", "b", "c"})
}

func TestSourcePoisonMessageIsDeadLettered(t *testing.T) {
	needBroker(t)
	id, topic := unique("src"), unique("topic")
	session(t, id, topic)
	connect(t, unique("pub"), true, 0).publish(t, topic, []string{"ok1", "poison", "ok2"}, nil)
	sink := newCollector(2)
	sink.Fail = func(m *pipeline.Message, _ int) error {
		if string(m.Body) == "poison" {
			return errors.New("cannot handle")
		}
		return nil
	}
	dlq := &pipelinetest.Sink{Entered: make(chan struct{}, 8)}
	stop := run(t, testSource(t, id, topic), sink, dlq)
	waitFor(t, sink.Full, "every message at the sink")
	waitFor(t, dlq.Entered, "the dead letter")
	stop()
	if sink.Seen["poison"] != 1 {
		t.Errorf("poison was tried %d times, want 1", sink.Seen["poison"])
	}
	assertSessionEmpty(t, id, topic)
}

func TestSourceReconnectsAfterConnectionDropLosingNothing(t *testing.T) {
	needBroker(t)
	id, topic := unique("src"), unique("topic")
	session(t, id, topic)
	want := bodies("d", 400)
	connect(t, unique("pub"), true, 0).publish(t, topic, want, nil)

	src := testSource(t, id, topic)
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	src.onDial = func(c net.Conn) { mu.Lock(); conns = append(conns, c); mu.Unlock() }
	sink := newCollector(len(want))
	var once sync.Once
	sink.Fail = func(*pipeline.Message, int) error {
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
	got := sink.Delivered()
	if !slices.Equal(got, sorted(want)) {
		t.Fatalf("delivered %d distinct messages, want %d", len(got), len(want))
	}
	assertSessionHoldsOnlyDuplicates(t, id, topic, got)
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

func TestSourceSoftStopLeavesExactlyTheUndeliveredInTheSession(t *testing.T) {
	needBroker(t)
	id, topic := unique("src"), unique("topic")
	session(t, id, topic)
	want := bodies("s", 200)
	connect(t, unique("pub"), true, 0).publish(t, topic, want, nil)
	sink := newCollector(10) // full after 10 distinct messages
	stop := run(t, testSource(t, id, topic), sink, nil)
	waitFor(t, sink.Full, "ten messages at the sink")
	stop()
	delivered := sink.Delivered()
	if len(delivered) >= len(want) {
		t.Fatalf("delivered all %d messages: the stop did not stop consuming", len(delivered))
	}
	// The resumed session holds the rest, and nothing delivered.
	c := connect(t, id, false, 600)
	var rest []string
	for _, p := range c.receive(t, len(want)-len(delivered)) {
		rest = append(rest, string(p.Payload))
	}
	if got := sorted(append(rest, delivered...)); !slices.Equal(got, sorted(want)) {
		t.Fatalf("delivered + left in the session = %d messages, not the %d published", len(got), len(want))
	}
	c.expectMarker(t, topic)
	c.close()
	connect(t, id, true, 0).close()
}
