package pipeline_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

// Given one batch of 8 source messages stuck in a sink, when Kill cuts the
// drain short, then the error says it was an abort, not a timeout, and
// counts the 8 source messages, not the one batch.
func TestKillReportsAnAbortCountingSourceMessages(t *testing.T) {
	src := pipelinetest.NewSource(bodies(8)...)
	entered := make(chan struct{}, 1)
	sink := &pipelinetest.Sink{Entered: entered, Gate: make(chan struct{})}
	p := pipeline.New("t")
	must(t, p.AddSource("src", "test", src))
	must(t, p.AddStage("batch", "batch", batchAll{}, pipeline.NodeOptions{}))
	must(t, p.AddSink("out", "test", sink, pipeline.NodeOptions{}))
	must(t, p.Connect("src", "", "batch"))
	must(t, p.Connect("batch", "", "out"))
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background()) }()
	<-entered
	p.Kill()
	err := <-done
	var ab *pipeline.AbandonedError
	if !errors.As(err, &ab) || !errors.Is(err, pipeline.ErrAborted) {
		t.Fatalf("Run = %v, want an AbandonedError that is ErrAborted", err)
	}
	if !ab.Killed || ab.Sources != 8 || ab.InFlight["out"] != 1 {
		t.Errorf("AbandonedError = %+v, want Killed, Sources 8, InFlight[out] 1", ab)
	}
	if want := "aborted: 8 source messages not delivered"; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Error() = %q, want the prefix %q", err, want)
	}
	if len(src.Nacked()) != 8 {
		t.Errorf("nacked %d source messages, want 8", len(src.Nacked()))
	}
}
