package stages_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/dsl"
	"github.com/pipe-dsl/pipe/pipeline"
)

// pacedSource sends n messages, the i-th at start + i*every on the real
// clock (catching up when behind).
type pacedSource struct {
	n     int
	every time.Duration
}

func (s *pacedSource) Read(ctx context.Context, out pipeline.Outlet) error {
	start := time.Now()
	for i := range s.n {
		if d := time.Until(start.Add(time.Duration(i) * s.every)); d > 0 {
			time.Sleep(d)
		}
		m := pipeline.NewMessage([]byte(fmt.Sprintf(`{"id":%d}`, i)), nil)
		if out.Send(ctx, m) != nil {
			return nil
		}
	}
	return nil
}

// latencySink records, for every member written, how long ago it was
// created.
type latencySink struct {
	mu  sync.Mutex
	lat []time.Duration
}

func (s *latencySink) Write(_ context.Context, m *pipeline.Message) error {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range m.Batch() {
		s.lat = append(s.lat, now.Sub(x.Created))
	}
	return nil
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func runPipeline(b *testing.B, src string, source pipeline.Source, sink pipeline.Sink) {
	b.Helper()
	c, err := dsl.Parse("bench.yaml", []byte(src), nil)
	if err != nil {
		b.Fatal(err)
	}
	p, err := dsl.Compile(c, &dsl.CompileOptions{Replace: func(n *dsl.Node) (any, bool) {
		switch n.Role {
		case pipeline.RoleSource:
			return source, true
		case pipeline.RoleSink:
			return sink, true
		}
		return nil, false
	}})
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkBatchLatency measures how long a message waits in a batch of
// size 100 / max_wait 50ms, from its creation to the sink's write, at a
// rate that fills batches by time (1k msg/s) and one that fills them by
// size (10k msg/s). One op is one message. The p99 must stay within
// max_wait + 5ms.
func BenchmarkBatchLatency(b *testing.B) {
	const maxWait = 50 * time.Millisecond
	for _, rate := range []int{1_000, 10_000} {
		b.Run(fmt.Sprintf("rate=%d", rate), func(b *testing.B) {
			sink := &latencySink{}
			src := &pacedSource{n: b.N, every: time.Second / time.Duration(rate)}
			b.ResetTimer()
			runPipeline(b, `
source: {generate: {message: '{}'}}
stages:
  - batch: {size: 100, max_wait: 50ms}
sink: {stdout: {}}
`, src, sink)
			b.StopTimer()
			slices.Sort(sink.lat)
			p50, p99 := percentile(sink.lat, 0.50), percentile(sink.lat, 0.99)
			b.ReportMetric(float64(p50)/1e6, "p50-ms")
			b.ReportMetric(float64(p99)/1e6, "p99-ms")
			if b.N >= 1000 && p99 > maxWait+5*time.Millisecond {
				b.Errorf("p99 latency %s exceeds max_wait + 5ms", p99)
			}
		})
	}
}

// heavyMap is a map stage whose CEL expression costs a few hundred
// microseconds of CPU per message.
const heavyMap = `
source: {generate: {message: '{}'}}
stages:
  - map: '{"id": msg.id, "h": lists.range(500).map(i, (msg.id * i) %% 97).filter(x, x > 50).size()}'
    workers: %d
sink: {drop: {}}
`

// fastSource sends n messages as fast as they are accepted.
type fastSource struct{ n int }

func (s *fastSource) Read(ctx context.Context, out pipeline.Outlet) error {
	for i := range s.n {
		if out.Send(ctx, pipeline.NewMessage([]byte(fmt.Sprintf(`{"id":%d}`, i)), nil)) != nil {
			return nil
		}
	}
	return nil
}

type discard struct{}

func (discard) Write(context.Context, *pipeline.Message) error { return nil }

// BenchmarkMapWorkers runs a CPU-heavy map with 1 and 2 workers; one op is
// one message. Compare ns/op, or read the speedup of BenchmarkMapWorkersSpeedup.
func BenchmarkMapWorkers(b *testing.B) {
	for _, w := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", w), func(b *testing.B) {
			runPipeline(b, fmt.Sprintf(heavyMap, w), &fastSource{n: b.N}, discard{})
		})
	}
}

// BenchmarkMapWorkersSpeedup reports the throughput of 2 workers over 1
// for the same 1000 messages ("speedup"), and, as a control measured in
// the same iterations, how much faster two goroutines spinning on plain Go
// arithmetic finish the same work as one ("machine-speedup"): on a shared
// machine the second core is often not there to be had.
func BenchmarkMapWorkersSpeedup(b *testing.B) {
	const n = 1000
	var one, two, spin1, spin2 time.Duration
	for b.Loop() {
		start := time.Now()
		runPipeline(b, fmt.Sprintf(heavyMap, 1), &fastSource{n: n}, discard{})
		one += time.Since(start)
		start = time.Now()
		runPipeline(b, fmt.Sprintf(heavyMap, 2), &fastSource{n: n}, discard{})
		two += time.Since(start)
		spin1 += spin(1)
		spin2 += spin(2)
	}
	b.ReportMetric(float64(one)/float64(two), "speedup")
	b.ReportMetric(float64(spin1)/float64(spin2), "machine-speedup")
	b.ReportMetric(float64(one)/float64(b.N*n), "ns/msg-1w")
	b.ReportMetric(float64(two)/float64(b.N*n), "ns/msg-2w")
}

var spinSink atomic.Int64

// spin does a fixed amount of arithmetic split over g goroutines and
// returns how long it took.
func spin(g int) time.Duration {
	const work = 300_000_000
	start := time.Now()
	var wg sync.WaitGroup
	for range g {
		wg.Go(func() {
			s := 0
			for i := range work / g {
				s += i * i % 7
			}
			spinSink.Add(int64(s))
		})
	}
	wg.Wait()
	return time.Since(start)
}
