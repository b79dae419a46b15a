package amqp

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/pipeline"
)

// counter is a sink that counts messages and signals at want.
type counter struct {
	n    atomic.Int64
	want int64
	done chan struct{}
}

func (c *counter) Write(_ context.Context, m *pipeline.Message) error {
	if c.n.Add(1) == c.want {
		close(c.done)
	}
	return nil
}

// BenchmarkSource measures consuming messages from a queue through a
// pipeline to a sink that discards them, acks included (prefetch 128).
func BenchmarkSource(b *testing.B) {
	br := needBroker(b)
	q := br.queue("bench")
	n := max(b.N, 1000)
	br.publish(q, bodies("b", n), nil)
	s, err := newSource(&sourceConfig{URL: DefaultURL, Queue: q, Prefetch: 128, Reconnect: time.Second}, component.Env{})
	if err != nil {
		b.Fatal(err)
	}
	sink := &counter{want: int64(n), done: make(chan struct{})}
	p := pipeline.New("bench")
	_ = p.AddSource("in", "amqp", s)
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
	b.ReportMetric(float64(n)/elapsed.Seconds(), "msgs/s")
}

// BenchmarkSinkBatch measures publishing a batch of 100 messages and
// waiting for every confirm.
func BenchmarkSinkBatch(b *testing.B) {
	br := needBroker(b)
	q := br.queue("benchsink")
	s, err := newSink(&sinkConfig{URL: DefaultURL, Queue: q, Persistent: true}, component.Env{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.(*sink).Close(context.Background())
	members := make([]*pipeline.Message, 100)
	for i := range members {
		members[i] = pipeline.NewMessage([]byte(`{"id":1,"level":"info","msg":"hello"}`), nil)
	}
	batch := pipeline.NewBatch(members)
	b.ResetTimer()
	for b.Loop() {
		if err := s.Write(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "msgs/s")
}
