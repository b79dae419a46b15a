package mqtt

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/pipeline"
)

type counter struct {
	n    atomic.Int64
	want int64
	done chan struct{}
}

func (c *counter) Write(context.Context, *pipeline.Message) error {
	if c.n.Add(1) == c.want {
		close(c.done)
	}
	return nil
}

// BenchmarkSource measures receiving messages queued in a session through
// a pipeline to a sink that discards them, PUBACKs included (in_flight 128).
func BenchmarkSource(b *testing.B) {
	needBroker(b)
	id, topic := unique("bench"), unique("benchtopic")
	session(b, id, topic)
	n := min(max(b.N, 1000), 900) // Mosquitto queues 1000 messages per session by default
	connect(b, unique("pub"), true, 0).publish(b, topic, bodies("b", n), nil)
	s, err := newSource(&sourceConfig{Broker: DefaultBroker, Topic: topic, ClientID: id, SessionExpiry: time.Minute,
		InFlight: 128, KeepAlive: 30 * time.Second, Reconnect: time.Second}, component.Env{})
	if err != nil {
		b.Fatal(err)
	}
	sink := &counter{want: int64(n), done: make(chan struct{})}
	p := pipeline.New("bench")
	_ = p.AddSource("in", "mqtt", s)
	_ = p.AddSink("out", "count", sink, pipeline.NodeOptions{Workers: 4})
	_ = p.Connect("in", "", "out")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	b.ResetTimer()
	start := time.Now()
	go func() { done <- p.Run(ctx) }()
	<-sink.done
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	<-done
	s.(*source).bg.Wait()
	connect(b, id, true, 0).close()
	b.ReportMetric(float64(n)/elapsed.Seconds(), "msgs/s")
}

// BenchmarkSinkBatch measures publishing a batch of 100 messages with QoS 1
// and waiting for every PUBACK.
func BenchmarkSinkBatch(b *testing.B) {
	needBroker(b)
	s, err := newSink(&sinkConfig{Broker: DefaultBroker, Topic: unique("benchsink"), KeepAlive: 30 * time.Second, Reconnect: time.Second}, component.Env{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.(*sink).Close(context.Background())
	members := make([]*pipeline.Message, 100)
	for i := range members {
		members[i] = pipeline.NewMessage([]byte(`{"id":1,"level":"info","msg":"hello"}`), nil)
	}
	batch := pipeline.NewBatch(members)
	for b.Loop() {
		if err := s.Write(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "msgs/s")
}
