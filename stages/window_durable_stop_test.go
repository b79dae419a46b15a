package stages

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
	"github.com/pipe-dsl/pipe/state"
)

// runWindowPipeline runs src -> window -> sink with durable state in b
// until stop returns, then stops softly; it returns the stage.
func runWindowPipeline(t *testing.T, b state.Backend, src pipeline.Source, sink pipeline.Sink, stop func(w *windowStage)) *windowStage {
	t.Helper()
	cfg := spendConfig(t)
	cfg.Type, cfg.OnLate, cfg.MaxOpen, cfg.MaxCollect = "tumbling", "drop", 100, 10
	st, err := newWindow(&cfg, component.Env{Pipeline: "p", Node: "window", Clock: pipelinetest.NewFakeClock(time.Unix(0, 0)), State: b})
	if err != nil {
		t.Fatal(err)
	}
	w := st.(*windowStage)
	p := pipeline.New("test")
	for _, err := range []error{
		p.AddSource("src", "test", src),
		p.AddStage("window", "window", w, pipeline.NodeOptions{}),
		p.AddSink("out", "test", sink, pipeline.NodeOptions{}),
		p.Connect("src", "", "window"),
		p.Connect("window", "", "out"),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	stop(w)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return w
}

func TestGivenDurableStateWhenThePipelineStopsSoftlyThenOpenWindowsStayInTheStoreAndTheNextRunResumesThem(t *testing.T) {
	for name, backend := range durableBackends(t) {
		t.Run(name, func(t *testing.T) {
			b := backend(t)
			// Given a durable window holding ann's and bob's open minutes,
			acks := newAckLog()
			src := &heldSource{bodies: []string{a1, b1}, acks: acks, sent: make(chan struct{})}
			sink := &pipelinetest.Sink{}
			// when the pipeline stops softly (SIGTERM),
			w := runWindowPipeline(t, b, src, sink, func(w *windowStage) {
				<-src.sent
				for w.open.Load() < 2 {
					runtime.Gosched()
				}
			})
			// then nothing is emitted, the two messages are acked by the
			// last checkpoint,
			if got := sink.Bodies(); len(got) != 0 {
				t.Fatalf("a soft stop with durable state emitted %q, want nothing", got)
			}
			for _, m := range []string{a1, b1} {
				if o := acks.outcome(m); o != "acked" {
					t.Errorf("%s: %s, want acked by the last checkpoint", m, o)
				}
			}
			if w.ckpts.Load() != 1 {
				t.Errorf("checkpoints = %d, want 1 (at the stop)", w.ckpts.Load())
			}
			// and a next run whose input ends emits both windows whole,
			// with ann's second message added to her first.
			sink2 := &pipelinetest.Sink{}
			src2 := pipelinetest.NewSource(a2)
			runWindowPipeline(t, b, src2, sink2, func(w *windowStage) {
				for len(sink2.Bodies()) < 2 {
					runtime.Gosched()
				}
			})
			got := sink2.Bodies()
			if len(got) != 2 || !strings.Contains(got[0], `"key":"ann"`) || !strings.Contains(got[0], `"n":2`) || !strings.Contains(got[0], `"total":12`) ||
				!strings.Contains(got[1], `"key":"bob"`) || !strings.Contains(got[1], `"n":1`) || strings.Contains(strings.Join(got, ""), `"final"`) {
				t.Fatalf("next run emitted %q, want ann's minute with n 2 and total 12, then bob's with n 1, both final", got)
			}
		})
	}
}
