package stages

import (
	"context"
	"runtime"
	"strings"
	"testing"

	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

// heldSource sends its bodies, then waits for the stop like a broker
// consumer with nothing more to read.
type heldSource struct {
	bodies []string
	acks   *ackLog
	sent   chan struct{}
}

func (s *heldSource) Read(ctx context.Context, out pipeline.Outlet) error {
	for _, b := range s.bodies {
		if err := out.Send(ctx, s.acks.msg(b)); err != nil {
			return nil
		}
	}
	close(s.sent)
	<-ctx.Done()
	return nil
}

func TestWindowAtASoftStopEmitsOpenWindowsAsPartialResultsAndAcksTheirMembers(t *testing.T) {
	// Given a window holding two open minutes when SIGTERM arrives,
	acks := newAckLog()
	src := &heldSource{bodies: []string{a1, b1}, acks: acks, sent: make(chan struct{})}
	sink := &pipelinetest.Sink{}
	// when the pipeline stops softly,
	w := runWindowPipeline(t, nil, src, sink, func(w *windowStage) {
		<-src.sent
		for w.open.Load() < 2 { // the stage has both (it stores the gauge after each message)
			runtime.Gosched()
		}
	})
	// then both windows go out marked "final": false, and their members
	// are acked because those results were delivered.
	got := sink.Bodies()
	if len(got) != 2 || !strings.Contains(got[0], `"key":"ann"`) || !strings.HasSuffix(got[0], `"final":false}`) ||
		!strings.Contains(got[1], `"key":"bob"`) || !strings.HasSuffix(got[1], `"final":false}`) {
		t.Fatalf("sink got %q, want ann's and bob's windows as partial results", got)
	}
	for _, b := range []string{a1, b1} {
		if o := acks.outcome(b); o != "acked" {
			t.Errorf("%s: %s, want acked", b, o)
		}
	}
	for _, f := range w.Report() {
		if f.Name == "windows_closed" && f.LabelValue == "shutdown" && f.Value != 2 {
			t.Errorf("windows_closed{shutdown} = %v, want 2", f.Value)
		}
	}
}
