package nats_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/pipeline"
)

// BenchmarkSourceThroughput measures the source alone: b.N stored
// messages pulled, handed to a sink that keeps nothing, and acked.
func BenchmarkSourceThroughput(b *testing.B) {
	js := server(b)
	in := unique(b)
	newStream(b, js, in)
	publish(b, js, in+".a", bodies("id", b.N))
	rec := newRecorder()
	p := compile(b, fmt.Sprintf(`
name: bench
source:
  nats_jetstream: {stream: %s, durable: pipe, create: true}
sink:
  drop: {}
`, in), map[string]pipeline.Sink{"sink": rec})
	b.ResetTimer()
	stop := start(b, p)
	collect(b, rec.C, b.N, time.Minute)
	settled(b, js, in, "pipe")
	b.StopTimer()
	if err := stop(); err != nil {
		b.Fatal(err)
	}
}
