package stages_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
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
			stop := make(chan struct{})
			late := make(chan []time.Duration)
			go func() { late <- timerLateness(maxWait, stop) }()
			b.ResetTimer()
			runPipeline(b, `
source: {generate: {message: '{}'}}
stages:
  - batch: {size: 100, max_wait: 50ms}
sink: {stdout: {}}
`, src, sink)
			b.StopTimer()
			close(stop)
			control := <-late
			slices.Sort(sink.lat)
			slices.Sort(control)
			p50, p99 := percentile(sink.lat, 0.50), percentile(sink.lat, 0.99)
			b.ReportMetric(float64(p50)/1e6, "p50-ms")
			b.ReportMetric(float64(p99)/1e6, "p99-ms")
			b.ReportMetric(float64(percentile(control, 0.99))/1e6, "timer-p99-late-ms")
			if b.N >= 1000 && p99 > maxWait+5*time.Millisecond {
				b.Errorf("p99 latency %s exceeds max_wait + 5ms (a plain %s timer on this machine meanwhile fired up to %s late at p99)",
					p99, maxWait, percentile(control, 0.99))
			}
		})
	}
}

// timerLateness is the control of BenchmarkBatchLatency: until stop, it
// waits for d-long timers back to back and returns how late its goroutine
// woke for each: the machine's scheduling delay, not the stage's.
func timerLateness(d time.Duration, stop <-chan struct{}) []time.Duration {
	var late []time.Duration
	t := time.NewTimer(d)
	defer t.Stop()
	for start := time.Now(); ; start = time.Now() {
		select {
		case <-stop:
			return late
		case <-t.C:
			late = append(late, time.Since(start)-d)
			t.Reset(d)
		}
	}
}

// heavyMap is a map stage whose CEL expression costs a few hundred
// microseconds of CPU per message and allocates little: a regular
// expression matched against an 8000-character field.
const heavyMap = `
source: {generate: {message: '{}'}}
stages:
  - map: '{"id": msg.id, "m": msg.text.matches("^(a|b)*(c|d)?b$")}'
    workers: %d
sink: {drop: {}}
`

// fastSource sends n messages with an 8000-character text field, as fast
// as they are accepted. Building a message is a copy, so the source takes
// a sliver of a core: formatting the text with %q took a third of what the
// map did and capped 2 workers at 1.5x.
type fastSource struct{ n int }

var text = strings.Repeat("ab", 4000) // nothing to escape

func (s *fastSource) Read(ctx context.Context, out pipeline.Outlet) error {
	for i := range s.n {
		body := make([]byte, 0, len(text)+32)
		body = strconv.AppendInt(append(body, `{"id":`...), int64(i), 10)
		body = append(append(append(body, `,"text":"`...), text...), `"}`...)
		if out.Send(ctx, pipeline.NewMessage(body, nil)) != nil {
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

// BenchmarkMapWorkersSpeedup reports how much faster 2 workers get through
// the same 300 messages than 1 ("speedup"), and, as a control measured in
// the same iterations, how much faster 2 goroutines finish plain Go
// arithmetic than 1 ("machine-speedup"): on a shared machine the second
// core is often not there to be had. Each iteration times both pairs back
// to back; the metrics are the medians over iterations, so a burst of load
// from elsewhere spoils one iteration, not the result.
func BenchmarkMapWorkersSpeedup(b *testing.B) {
	const n = 300
	var ratios, machine []float64
	var one, two time.Duration
	for b.Loop() {
		start := time.Now()
		runPipeline(b, fmt.Sprintf(heavyMap, 1), &fastSource{n: n}, discard{})
		d1 := time.Since(start)
		start = time.Now()
		runPipeline(b, fmt.Sprintf(heavyMap, 2), &fastSource{n: n}, discard{})
		d2 := time.Since(start)
		one, two = one+d1, two+d2
		ratios = append(ratios, float64(d1)/float64(d2))
		machine = append(machine, float64(spin(1))/float64(spin(2)))
	}
	b.ReportMetric(median(ratios), "speedup")
	b.ReportMetric(median(machine), "machine-speedup")
	b.ReportMetric(float64(one)/float64(b.N*n), "ns/msg-1w")
	b.ReportMetric(float64(two)/float64(b.N*n), "ns/msg-2w")
}

func median(xs []float64) float64 {
	slices.Sort(xs)
	return xs[len(xs)/2]
}

var spinSink atomic.Int64

// spin does a fixed amount of arithmetic split over g goroutines and
// returns how long it took.
func spin(g int) time.Duration {
	const work = 100_000_000
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
