package gostreams_test

import (
	"context"
	"slices"
	"testing"

	"github.com/reugn/go-streams/extension"
	"go.uber.org/goleak"

	"github.com/pipe-dsl/pipe/gostreams"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestGoStreamsSourceFeedsAPipelineSink(t *testing.T) {
	in := make(chan any, 4)
	in <- "a"
	in <- []byte("b")
	in <- map[string]int{"n": 1}
	in <- func() {} // not JSON: dead-lettered, not lost
	close(in)
	sink, dlq := &pipelinetest.Sink{}, &pipelinetest.Sink{}
	p := pipeline.New("t")
	must(t, p.AddSource("src", "go-streams", gostreams.Source(extension.NewChanSource(in))))
	must(t, p.AddSink("out", "test", sink, pipeline.NodeOptions{}))
	must(t, p.SetDeadLetter("test", dlq, pipeline.NodeOptions{}))
	must(t, p.Connect("src", "", "out"))
	must(t, p.Run(context.Background()))
	if got, want := sink.Bodies(), []string{"a", "b", `{"n":1}`}; !slices.Equal(got, want) {
		t.Errorf("sink got %q, want %q", got, want)
	}
	if dlq.Writes() != 1 {
		t.Errorf("dead letters = %d, want 1 for the func element", dlq.Writes())
	}
}

func TestPipelineSinkDrainsIntoAGoStreamsSink(t *testing.T) {
	out := make(chan any, 8)
	src := pipelinetest.NewSource("x", "y", "z")
	p := pipeline.New("t")
	must(t, p.AddSource("src", "test", src))
	must(t, p.AddSink("out", "go-streams", gostreams.Sink(extension.NewChanSink(out)), pipeline.NodeOptions{}))
	must(t, p.Connect("src", "", "out"))
	must(t, p.Run(context.Background()))
	var got []string
	for v := range out { // closed by the sink's Close
		got = append(got, string(v.([]byte)))
	}
	if want := []string{"x", "y", "z"}; !slices.Equal(got, want) {
		t.Errorf("go-streams sink got %q, want %q", got, want)
	}
	if len(src.Acked()) != 3 {
		t.Errorf("acked %d, want 3", len(src.Acked()))
	}
}

func TestFlowCancelStopsThePipeline(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	f, err := gostreams.NewFlow(ctx, func(src pipeline.Source, sink pipeline.Sink) (*pipeline.Pipeline, error) {
		p := pipeline.New("t")
		must(t, p.AddSource("src", "go-streams", src))
		must(t, p.AddSink("out", "go-streams", sink, pipeline.NodeOptions{}))
		must(t, p.Connect("src", "", "out"))
		return p, nil
	})
	must(t, err)
	f.In() <- "one"
	if got := string((<-f.Out()).([]byte)); got != "one" {
		t.Fatalf("out = %q", got)
	}
	cancel()
	for range f.Out() { // closes once the pipeline drained
	}
	must(t, f.Err())
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
