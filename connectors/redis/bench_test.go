package redis_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/pipeline"
)

// BenchmarkSourceThroughput measures the source alone: b.N entries read
// through a consumer group, handed to a sink that keeps nothing, and acked.
func BenchmarkSourceThroughput(b *testing.B) {
	rdb := server(b)
	in := unique(b, rdb, "in")
	add(b, rdb, in, bodies("id", b.N))
	rec := newRecorder()
	p := compile(b, fmt.Sprintf(`
name: bench
source:
  redis_streams: {stream: %q, group: g, create_group: true}
sink:
  drop: {}
`, in), map[string]pipeline.Sink{"sink": rec})
	b.ResetTimer()
	stop := start(b, p)
	collect(b, rec.C, b.N, time.Minute)
	settled(b, rdb, in, "g")
	b.StopTimer()
	if err := stop(); err != nil {
		b.Fatal(err)
	}
}
