package tracing_test

import (
	"context"
	"errors"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.uber.org/goleak"

	"github.com/pipe-dsl/pipe/tracing"
)

// gatedExporter reports each ExportSpans call's batch size on calls, and
// when gate is non-nil waits for a value from it before returning.
type gatedExporter struct {
	calls    chan int
	gate     chan struct{}
	err      error
	shutdown chan struct{}
}

func newGatedExporter(gated bool) *gatedExporter {
	e := &gatedExporter{calls: make(chan int, 100), shutdown: make(chan struct{})}
	if gated {
		e.gate = make(chan struct{})
	}
	return e
}

func (e *gatedExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.calls <- len(spans)
	if e.gate != nil {
		<-e.gate
	}
	return e.err
}

func (e *gatedExporter) Shutdown(context.Context) error { close(e.shutdown); return nil }

// endSpans ends n sampled spans through a provider whose only processor is b.
func endSpans(tp *sdktrace.TracerProvider, n int) {
	tr := tp.Tracer("test")
	for range n {
		_, s := tr.Start(context.Background(), "s")
		s.End()
	}
}

func provider(b *tracing.Batcher) *sdktrace.TracerProvider {
	return sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(b))
}

const never = time.Hour

func recv(t *testing.T, c <-chan int) int {
	t.Helper()
	select {
	case n := <-c:
		return n
	case <-time.After(10 * time.Second):
		t.Fatal("no export call")
		return 0
	}
}

func TestBatcherExportsAFullBatchWithoutWaitingForTheInterval(t *testing.T) {
	defer goleak.VerifyNone(t)
	exp := newGatedExporter(false)
	b := tracing.NewBatcher(exp, tracing.BatcherOptions{BatchSize: 4, Interval: never})
	tp := provider(b)
	endSpans(tp, 9)
	if n := recv(t, exp.calls); n < 4 {
		t.Errorf("first export has %d spans, want at least the batch size 4", n)
	}
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := b.Stats(); s != (tracing.Stats{Ended: 9, Exported: 9}) {
		t.Errorf("Stats() = %+v, want 9 ended and exported", s)
	}
}

func TestBatcherExportsAPartialBatchAfterTheInterval(t *testing.T) {
	defer goleak.VerifyNone(t)
	exp := newGatedExporter(false)
	b := tracing.NewBatcher(exp, tracing.BatcherOptions{BatchSize: 100, Interval: time.Millisecond})
	tp := provider(b)
	defer tp.Shutdown(context.Background())
	endSpans(tp, 3)
	got := 0
	for got < 3 {
		got += recv(t, exp.calls)
	}
	if got != 3 {
		t.Errorf("exported %d spans, want 3", got)
	}
}

func TestBatcherDropsAndCountsWhenTheQueueIsFull(t *testing.T) {
	defer goleak.VerifyNone(t)
	exp := newGatedExporter(true)
	b := tracing.NewBatcher(exp, tracing.BatcherOptions{QueueSize: 8, BatchSize: 8, Interval: never})
	tp := provider(b)
	endSpans(tp, 8) // a full batch: taken by the exporter, which blocks
	if n := recv(t, exp.calls); n != 8 {
		t.Fatalf("first export has %d spans, want 8", n)
	}
	endSpans(tp, 8+5) // refills the queue, then 5 find it full
	if s := b.Stats(); s.Dropped != 5 || s.Ended != 21 {
		t.Errorf("Stats() = %+v, want 21 ended and 5 dropped", s)
	}
	close(exp.gate) // let every export through
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := b.Stats(); s != (tracing.Stats{Ended: 21, Exported: 16, Dropped: 5}) {
		t.Errorf("after Shutdown Stats() = %+v, want 21 = 16 exported + 5 dropped", s)
	}
}

func TestBlockingBatcherWaitsForRoomInsteadOfDropping(t *testing.T) {
	defer goleak.VerifyNone(t)
	exp := newGatedExporter(true)
	b := tracing.NewBatcher(exp, tracing.BatcherOptions{QueueSize: 4, BatchSize: 4, Interval: never, Blocking: true})
	tp := provider(b)
	endSpans(tp, 4)
	recv(t, exp.calls) // the exporter holds the first batch
	endSpans(tp, 4)    // the queue is full again
	ended := make(chan struct{})
	go func() {
		endSpans(tp, 1) // must wait: the queue is full and the exporter busy
		close(ended)
	}()
	select {
	case <-ended:
		t.Fatal("OnEnd returned while the queue was full")
	case <-time.After(20 * time.Millisecond):
	}
	exp.gate <- struct{}{} // first export returns; the goroutine takes the queue
	<-ended
	close(exp.gate)
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := b.Stats(); s != (tracing.Stats{Ended: 9, Exported: 9}) {
		t.Errorf("Stats() = %+v, want 9 ended and exported, none dropped", s)
	}
}

func TestBatcherForceFlushExportsAndReportsFailures(t *testing.T) {
	defer goleak.VerifyNone(t)
	exp := newGatedExporter(false)
	exp.err = errors.New("collector down")
	b := tracing.NewBatcher(exp, tracing.BatcherOptions{BatchSize: 2, Interval: never})
	tp := provider(b)
	endSpans(tp, 1)
	err := tp.ForceFlush(context.Background())
	if err == nil || !errors.Is(err, exp.err) {
		t.Errorf("ForceFlush() = %v, want the exporter's error", err)
	}
	if s := b.Stats(); s != (tracing.Stats{Ended: 1, Failed: 1}) {
		t.Errorf("Stats() = %+v, want 1 ended and failed", s)
	}
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestBatcherShutdownExportsTheRestAndDropsLaterSpans(t *testing.T) {
	defer goleak.VerifyNone(t)
	exp := newGatedExporter(false)
	b := tracing.NewBatcher(exp, tracing.BatcherOptions{BatchSize: 100, Interval: never})
	tp := provider(b)
	tr := tp.Tracer("test")
	_, late := tr.Start(context.Background(), "late")
	endSpans(tp, 3)
	if err := b.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exp.shutdown:
	default:
		t.Error("Shutdown did not shut the exporter down")
	}
	late.End()
	if s := b.Stats(); s != (tracing.Stats{Ended: 4, Exported: 3, Dropped: 1}) {
		t.Errorf("Stats() = %+v, want 3 exported and the late span dropped", s)
	}
}

func TestBatcherShutdownReturnsWhenItsContextEnds(t *testing.T) {
	defer goleak.VerifyNone(t)
	exp := newGatedExporter(true)
	b := tracing.NewBatcher(exp, tracing.BatcherOptions{BatchSize: 1, Interval: never})
	tp := provider(b)
	endSpans(tp, 1)
	recv(t, exp.calls) // the export hangs
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown(canceled) = %v, want context.Canceled", err)
	}
	close(exp.gate)
	if err := b.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestBatcherTakesUnsetOptionsFromTheStandardEnvironment(t *testing.T) {
	t.Setenv("OTEL_BSP_MAX_QUEUE_SIZE", "3")
	t.Setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "2")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "3600000")
	defer goleak.VerifyNone(t)
	exp := newGatedExporter(true)
	b := tracing.NewBatcher(exp, tracing.BatcherOptions{})
	tp := provider(b)
	endSpans(tp, 2) // a full batch of 2, held by the exporter
	if n := recv(t, exp.calls); n != 2 {
		t.Errorf("first export has %d spans, want the batch size 2", n)
	}
	endSpans(tp, 4) // 3 fit in the queue
	if s := b.Stats(); s.Dropped != 1 {
		t.Errorf("Stats() = %+v, want 1 dropped with a queue of 3", s)
	}
	close(exp.gate)
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Given an export that hangs, when Shutdown's context ends, then every span
// not yet exported, in the export or still queued, is counted as failed, and
// the export finishing later counts nothing twice.
func TestBatcherShutdownCountsSpansItAbandonsAsFailed(t *testing.T) {
	defer goleak.VerifyNone(t)
	exp := newGatedExporter(true)
	b := tracing.NewBatcher(exp, tracing.BatcherOptions{BatchSize: 2, Interval: never})
	tp := provider(b)
	endSpans(tp, 2)
	recv(t, exp.calls) // a batch of 2 hangs in the exporter
	endSpans(tp, 3)    // 3 more wait in the queue
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown(canceled) = %v, want context.Canceled", err)
	}
	want := tracing.Stats{Ended: 5, Failed: 5}
	if s := b.Stats(); s != want {
		t.Errorf("Stats() after an abandoned Shutdown = %+v, want %+v", s, want)
	}
	close(exp.gate) // the hung export returns success
	<-exp.shutdown  // and the goroutine releases the exporter
	if err := b.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := b.Stats(); s != want {
		t.Errorf("Stats() after the hung export returned = %+v, want %+v", s, want)
	}
}
