package stages

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/expr"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/state"
)

// ackOutlet delivers (acks) every result at once and counts them.
type ackOutlet struct{ results atomic.Int64 }

func (o *ackOutlet) Send(_ context.Context, m *pipeline.Message) error {
	o.results.Add(1)
	m.Ack()
	return nil
}
func (o *ackOutlet) SendTo(ctx context.Context, _ string, m *pipeline.Message) error {
	return o.Send(ctx, m)
}
func (o *ackOutlet) Fail(_ context.Context, m *pipeline.Message, _ error) { m.Ack() }
func (o *ackOutlet) Drop(m *pipeline.Message, _ string)                   { m.Ack() }

// runWindowBench sends n messages for keys users, event time advancing by
// step per message from 2026-01-01, through a keyed tumbling window with
// CEL key, event_time and aggregates; every result is delivered at once.
// sample, if set, is called every million messages.
func runWindowBench(b *testing.B, n, users int, step time.Duration, size time.Duration, sample func(i int)) int64 {
	b.Helper()
	res, _ := runWindowBenchOn(b, nil, n, users, step, size, sample)
	return res
}

// runWindowBenchOn is runWindowBench with durable state in store (nil:
// in memory); messages then carry Kafka positions (one partition).
func runWindowBenchOn(b *testing.B, store state.Backend, n, users int, step time.Duration, size time.Duration, sample func(i int)) (int64, *windowStage) {
	b.Helper()
	cfg := windowConfig{Type: "tumbling", Size: size, MaxOutOfOrder: time.Second, OnLate: "drop", MaxOpen: 1_000_000, MaxCollect: 10,
		Key: celB(b, "msg.user"), EventTime: celB(b, "msg.ts"),
		Aggregate: map[string]string{"total": "sum(msg.amount)", "n": "count()", "max": "max(msg.amount)"}}
	st, err := newWindow(&cfg, component.Env{Pipeline: "bench", Node: "win", Clock: pipeline.SystemClock, State: store, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	in := make(chan *pipeline.Message, 1024)
	out := &ackOutlet{}
	done := make(chan error, 1)
	go func() { done <- st.(*windowStage).Run(context.Background(), in, out) }()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	var acked atomic.Int64
	ack := func(error) { acked.Add(1) }
	buf := make([]byte, 0, 96)
	for i := range n {
		ts := t0 + int64(time.Duration(i)*step/time.Millisecond)
		buf = append(buf[:0], `{"user":"u`...)
		buf = strconv.AppendInt(buf, int64(i%users), 10)
		buf = append(buf, `","amount":`...)
		buf = strconv.AppendInt(buf, int64(i%97), 10)
		buf = append(buf, `,"ts":`...)
		buf = strconv.AppendInt(buf, ts, 10)
		buf = append(buf, '}')
		m := pipeline.NewMessage([]byte(string(buf)), ack)
		if store != nil {
			m.Meta = map[string]string{"kafka_topic": "t", "kafka_partition": "0", "kafka_offset": strconv.Itoa(i)}
		}
		in <- m
		if sample != nil && (i+1)%1_000_000 == 0 {
			sample(i + 1)
		}
	}
	close(in)
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	if acked.Load() != int64(n) {
		b.Fatalf("acked %d of %d", acked.Load(), n)
	}
	return out.results.Load(), st.(*windowStage)
}

func celB(b *testing.B, src string) *expr.Program {
	p, err := expr.Compile(src)
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkWindowKeyedTumbling: msgs/s through the stage (CEL key,
// event_time and three aggregates; 10k users; 1-minute windows).
func BenchmarkWindowKeyedTumbling(b *testing.B) {
	b.ReportAllocs()
	runWindowBench(b, b.N, 10_000, time.Millisecond, time.Minute, nil)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkWindowRSS10M sends 10M messages across 100k users (10k
// messages a second of event time, 10s windows: ~63k open windows at a
// time) and reports the process RSS after the 1st and the 10th million.
// Run it alone: go test -run x -bench WindowRSS10M -benchtime 1x ./stages/
func BenchmarkWindowRSS10M(b *testing.B) {
	var first, peak, last float64
	for range b.N {
		runWindowBench(b, 10_000_000, 100_000, 100*time.Microsecond, 10*time.Second, func(i int) {
			rss := rssMiB()
			if i == 1_000_000 {
				first = rss
			}
			peak, last = max(peak, rss), rss
			b.Logf("%2dM messages: RSS %.0f MiB", i/1_000_000, rss)
		})
	}
	b.ReportMetric(first, "rss-MiB@1M")
	b.ReportMetric(last, "rss-MiB@10M")
	b.ReportMetric(peak, "rss-MiB-peak")
}

// rssMiB reads the resident set size from /proc (Linux), 0 elsewhere.
func rssMiB() float64 {
	raw, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(raw))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseFloat(f[1], 64)
	return pages * float64(os.Getpagesize()) / (1 << 20)
}

// BenchmarkWindowDurable: msgs/s of BenchmarkWindowKeyedTumbling's load
// with the window state in memory, in Redis and in PostgreSQL
// (checkpoint_interval 1s, every message positioned), and the cost of the
// last checkpoint: go test -run x -bench WindowDurable -benchtime 3000000x ./stages/
func BenchmarkWindowDurable(b *testing.B) {
	stores := map[string]func(testing.TB) state.Backend{"memory": func(testing.TB) state.Backend { return nil }}
	for name, open := range durableBackends(b) {
		stores[name] = open
	}
	for _, name := range []string{"memory", "redis", "postgres"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			_, w := runWindowBenchOn(b, stores[name](b), b.N, 10_000, time.Millisecond, time.Minute, nil)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			if name != "memory" {
				b.ReportMetric(float64(w.ckpts.Load()), "checkpoints")
				b.ReportMetric(float64(w.ckptPeakBytes.Load()), "bytes/largest-ckpt")
				b.ReportMetric(float64(w.ckptPeakMicros.Load())/1000, "ms/slowest-ckpt")
			}
		})
	}
}
