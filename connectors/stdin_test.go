package connectors

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

// blockingPipe returns the ends of a pipe in blocking mode, as a shell hands
// one to a process's standard input (os.Pipe's ends honour deadlines).
func blockingPipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	var fds [2]int
	if err := syscall.Pipe(fds[:]); err != nil {
		t.Fatal(err)
	}
	r, w = os.NewFile(uintptr(fds[0]), "stdin"), os.NewFile(uintptr(fds[1]), "writer")
	t.Cleanup(func() { _ = w.Close(); _ = r.Close() })
	return r, w
}

// Given standard input that stays open with nothing more to read, when the
// soft stop comes, then Read returns at once with every line it had read
// delivered.
func TestStdinHonoursTheSoftStopWhileTheInputStaysOpen(t *testing.T) {
	r, w := blockingPipe(t)
	entered := make(chan struct{}, 2)
	sink := &pipelinetest.Sink{Entered: entered}
	p := pipeline.New("t")
	must(t, p.AddSource("src", "stdin", &stdin{in: r, max: DefaultMaxLine}))
	must(t, p.AddSink("out", "test", sink, pipeline.NodeOptions{}))
	must(t, p.Connect("src", "", "out"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	if _, err := w.WriteString("{\"id\":1}\n{\"id\":2}\n"); err != nil {
		t.Fatal(err)
	}
	<-entered
	<-entered
	cancel()
	// The writer stays open: only the soft stop can end the read.
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		_ = w.Close() // let the blocked read end so the test can report
		<-done
		t.Fatal("Run did not return after the soft stop while stdin stayed open")
	}
	if got := sink.Bodies(); len(got) != 2 {
		t.Errorf("delivered %q, want both lines", got)
	}
	// The input is blocking again for whoever reads it next.
	flags, _, errno := syscall.Syscall(syscall.SYS_FCNTL, r.Fd(), syscall.F_GETFL, 0)
	if errno != 0 {
		t.Fatal(errno)
	}
	if flags&syscall.O_NONBLOCK != 0 {
		t.Error("the pipe was left in non-blocking mode")
	}
}

// Given standard input holding a complete line, a blank one and the start
// of a third, when nothing more arrives, then the complete line is
// delivered at once: lines in hand go on together, but a line never waits
// for the next read.
func TestStdinDeliversALineInHandWhileTheNextIsIncomplete(t *testing.T) {
	r, w := blockingPipe(t)
	entered := make(chan struct{}, 2)
	sink := &pipelinetest.Sink{Entered: entered}
	p := pipeline.New("t")
	must(t, p.AddSource("src", "stdin", &stdin{in: r, max: DefaultMaxLine}))
	must(t, p.AddSink("out", "test", sink, pipeline.NodeOptions{}))
	must(t, p.Connect("src", "", "out"))
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background()) }()

	if _, err := w.WriteString("{\"id\":1}\n\n{\"id\":"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Error("the complete line was not delivered while the next one was incomplete")
	}
	if _, err := w.WriteString("2}\n"); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if got := sink.Bodies(); len(got) != 2 || got[0] != `{"id":1}` || got[1] != `{"id":2}` {
		t.Errorf("delivered %q, want both lines in order", got)
	}
}
