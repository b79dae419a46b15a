package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

func TestATapSeesEveryMessageLeavingItsNodeUntilDetached(t *testing.T) {
	pass := pipelinetest.ProcessorFunc(func(_ context.Context, m *pipeline.Message) (*pipeline.Message, error) {
		m.SetBody(append([]byte("x-"), m.Body...))
		return m, nil
	})
	p := linear(t, pipelinetest.NewSource(bodies(5)...), pass, &pipelinetest.Sink{}, pipeline.NodeOptions{Buffer: 1})
	var mu sync.Mutex
	var st, out []string
	detach, err := p.Tap("st", func(v pipeline.Tapped) { mu.Lock(); st = append(st, string(v.Body)); mu.Unlock() })
	must(t, err)
	detachOut, err := p.Tap("out", func(v pipeline.Tapped) { mu.Lock(); out = append(out, string(v.Body)); mu.Unlock() })
	must(t, err)
	must(t, p.Run(context.Background()))
	detach()
	detach() // twice is fine
	detachOut()
	if got, want := fmt.Sprint(st), "[x-m0 x-m1 x-m2 x-m3 x-m4]"; got != want {
		t.Fatalf("tap on st saw %s, want %s", got, want)
	}
	if got, want := fmt.Sprint(out), "[x-m0 x-m1 x-m2 x-m3 x-m4]"; got != want {
		t.Fatalf("tap on sink out saw %s, want %s (delivered messages)", got, want)
	}
	if _, err := p.Tap("nope", func(pipeline.Tapped) {}); err == nil {
		t.Fatal(`Tap("nope") = nil error, want no node named "nope"`)
	}
}

func TestRecentErrorsKeepTheLastFailuresNewestFirst(t *testing.T) {
	fail := pipelinetest.ProcessorFunc(func(_ context.Context, m *pipeline.Message) (*pipeline.Message, error) {
		return nil, errors.New("bad " + string(m.Body))
	})
	n := pipeline.RecentErrorsKept + 5
	p := linear(t, pipelinetest.NewSource(bodies(n)...), fail, &pipelinetest.Sink{}, pipeline.NodeOptions{Buffer: 1})
	_ = p.Run(context.Background())
	got, ok := p.RecentErrors("st")
	if !ok || len(got) != pipeline.RecentErrorsKept {
		t.Fatalf("RecentErrors(st) = %d entries, %v; want %d, true", len(got), ok, pipeline.RecentErrorsKept)
	}
	if want := "bad m" + strconv.Itoa(n-1); got[0].Error != want || got[0].Reason != pipeline.ReasonError {
		t.Fatalf("newest error = %+v, want %q with reason %q", got[0], want, pipeline.ReasonError)
	}
	if e, _ := p.RecentErrors("src"); len(e) != 0 {
		t.Fatalf("RecentErrors(src) = %v, want none", e)
	}
}

// BenchmarkOutletTap compares the message path with no tap (one atomic
// load), and with a tap that never blocks but skips what a slow reader
// has no room for.
func BenchmarkOutletTap(b *testing.B) {
	pass := pipelinetest.ProcessorFunc(func(_ context.Context, m *pipeline.Message) (*pipeline.Message, error) { return m, nil })
	for _, tapped := range []bool{false, true} {
		b.Run(fmt.Sprintf("tapped=%v", tapped), func(b *testing.B) {
			src := pipelinetest.NewSource(bodies(b.N)...)
			p := pipeline.New("bench")
			must(b, p.AddSource("src", "test", src))
			must(b, p.AddStage("st", "test", pass, pipeline.NodeOptions{}))
			must(b, p.AddSink("out", "test", &pipelinetest.Sink{}, pipeline.NodeOptions{}))
			must(b, p.Connect("src", "", "st"))
			must(b, p.Connect("st", "", "out"))
			var skipped atomic.Int64
			if tapped {
				buf := make(chan pipeline.Tapped, 16) // nobody reads: the slowest reader
				detach, err := p.Tap("st", func(v pipeline.Tapped) {
					select {
					case buf <- v:
					default:
						skipped.Add(1)
					}
				})
				must(b, err)
				defer detach()
			}
			b.ResetTimer()
			must(b, p.Run(context.Background()))
			b.ReportMetric(float64(skipped.Load()), "skipped")
		})
	}
}
