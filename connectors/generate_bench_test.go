package connectors

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/expr"
	"github.com/pipe-dsl/pipe/pipeline"
)

// clockOutlet notes the real time of the first and the last Send.
type clockOutlet struct {
	timedOutlet
	n           int
	first, last time.Time
}

func (o *clockOutlet) Send(_ context.Context, m *pipeline.Message) error {
	now := time.Now()
	if o.n == 0 {
		o.first = now
	}
	o.n++
	o.last = now
	m.Ack()
	return nil
}

// BenchmarkGeneratePacing runs generate with an interval on the real clock
// for PACING_SECS (default 5) and compares the time from the first message
// to the last with (n − 1)·interval. Run it with `make bench-pacing`.
//
//	PACING_SECS=5 go test -run '^$' -bench GeneratePacing -benchtime 1x ./connectors/
func BenchmarkGeneratePacing(b *testing.B) {
	secs := 5.0
	if v := os.Getenv("PACING_SECS"); v != "" {
		s, err := strconv.ParseFloat(v, 64)
		if err != nil || !(s > 0) {
			b.Fatalf("PACING_SECS=%q: want a positive number of seconds", v)
		}
		secs = s
	}
	prog, err := expr.Compile(`{"n": seq}`)
	if err != nil {
		b.Fatal(err)
	}
	for _, iv := range []time.Duration{time.Second, 10 * time.Millisecond, time.Millisecond, 500 * time.Microsecond, 100 * time.Microsecond, 10 * time.Microsecond} {
		b.Run(fmt.Sprintf("interval=%v", iv), func(b *testing.B) {
			n := 1 + int(secs*float64(time.Second)/float64(iv))
			src, err := newGenerate(&generateConfig{Count: int64(n), Interval: iv, Message: prog}, component.Env{Clock: pipeline.SystemClock})
			if err != nil {
				b.Fatal(err)
			}
			var actual float64
			for b.Loop() {
				out := &clockOutlet{}
				if err := src.Read(context.Background(), out); err != nil {
					b.Fatal(err)
				}
				if out.n != n {
					b.Fatalf("sent %d messages, want %d", out.n, n)
				}
				actual = out.last.Sub(out.first).Seconds()
			}
			expected := float64(n-1) * iv.Seconds()
			b.ReportMetric(expected, "expected_s")
			b.ReportMetric(actual, "actual_s")
			b.ReportMetric(100*(actual-expected)/expected, "%off")
		})
	}
}

// countOutlet acks and counts.
type countOutlet struct {
	timedOutlet
	n int
}

func (o *countOutlet) Send(_ context.Context, m *pipeline.Message) error {
	o.n++
	m.Ack()
	return nil
}

// BenchmarkGenerateBodies is generate's cost per message, without an
// interval, for the object literal of the Benthos twin (docs/performance.md):
// split into a template, and evaluated whole as before.
//
//	go test -run '^$' -bench GenerateBodies -benchmem -count 6 ./connectors/
func BenchmarkGenerateBodies(b *testing.B) {
	prog, err := expr.Compile(`{"id": seq, "level": seq % 10 == 0 ? "error" : "info", "amount": double(seq) * 1.5}`)
	if err != nil {
		b.Fatal(err)
	}
	for _, templated := range []bool{true, false} {
		b.Run(fmt.Sprintf("template=%v", templated), func(b *testing.B) {
			src, err := newGenerate(&generateConfig{Count: int64(b.N), Message: prog}, component.Env{Clock: pipeline.SystemClock})
			if err != nil {
				b.Fatal(err)
			}
			if !templated {
				src.(*generate).tmpl = nil
			}
			out := &countOutlet{}
			b.ResetTimer()
			if err := src.Read(context.Background(), out); err != nil {
				b.Fatal(err)
			}
			if out.n != b.N {
				b.Fatalf("sent %d messages, want %d", out.n, b.N)
			}
		})
	}
}
