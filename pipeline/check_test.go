package pipeline_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

// checkedSink is a test sink whose Check returns err and records whether
// Close was called.
type checkedSink struct {
	pipelinetest.Sink
	err    error
	closed bool
}

var (
	_ pipeline.Checker = (*checkedSink)(nil)
	_ pipeline.Closer  = (*checkedSink)(nil)
)

func (s *checkedSink) Check(context.Context) error { return s.err }
func (s *checkedSink) Close(context.Context) error { s.closed = true; return nil }

// Given a sink whose target fails its check, when the pipeline runs, then
// Run fails naming the sink, and the source never read a message.
func TestASinkThatFailsItsCheckStopsTheRunBeforeTheSourceReads(t *testing.T) {
	src := pipelinetest.NewSource(bodies(3)...)
	bad := errors.New("directory /proc/x: no such file or directory")
	sink := &checkedSink{err: bad}
	p := pipeline.New("t")
	must(t, p.AddSource("src", "test", src))
	must(t, p.AddSink("out", "file", sink, pipeline.NodeOptions{}))
	must(t, p.Connect("src", "", "out"))
	err := p.Run(context.Background())
	if !errors.Is(err, bad) || !strings.Contains(err.Error(), `sink "out" (file)`) {
		t.Fatalf("Run = %v, want the check's error naming sink \"out\" (file)", err)
	}
	if src.Sent() != 0 || sink.Writes() != 0 {
		t.Errorf("source sent %d, sink wrote %d; want nothing read", src.Sent(), sink.Writes())
	}
	if !sink.closed {
		t.Error("the checked sink was not closed")
	}
}

// A sink whose check passes runs as usual.
func TestASinkThatPassesItsCheckRuns(t *testing.T) {
	src := pipelinetest.NewSource(bodies(3)...)
	sink := &checkedSink{}
	p := pipeline.New("t")
	must(t, p.AddSource("src", "test", src))
	must(t, p.AddSink("out", "file", sink, pipeline.NodeOptions{}))
	must(t, p.Connect("src", "", "out"))
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(sink.Bodies()) != 3 {
		t.Errorf("sink wrote %v, want 3 messages", sink.Bodies())
	}
}
