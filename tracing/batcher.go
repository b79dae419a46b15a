package tracing

import (
	"context"
	"errors"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Batcher defaults, the same as the SDK's batch span processor.
const (
	DefaultQueueSize      = 2048
	DefaultBatchSize      = 512
	DefaultExportInterval = 5 * time.Second
	DefaultExportTimeout  = 30 * time.Second
)

// Batcher is a span processor that queues ended, sampled spans and exports
// them in batches from one goroutine, like the SDK's BatchSpanProcessor and
// with the same defaults and speed (BenchmarkThroughput, proc=batcher vs
// proc=sdk). It exists for its counts: a span is queued, exported, failed
// (the exporter returned an error) or dropped (the queue was full), and
// [Batcher.Stats] is exact at any moment, so the dropped-spans metric
// moves when a span is dropped. The SDK processor counts drops only in a
// private field or in experimental self-observability metrics.
//
// Its goroutine wakes once per full batch, per interval or per flush.
// Create a Batcher with [NewBatcher]; the zero value is not usable.
type Batcher struct {
	exp       sdktrace.SpanExporter
	queueSize int
	batchSize int
	interval  time.Duration
	timeout   time.Duration
	blocking  bool

	mu      sync.Mutex
	notFull sync.Cond // signalled when the goroutine takes the queue
	queue   []sdktrace.ReadOnlySpan
	closed  bool
	// taken counts the spans the goroutine took from the queue and has not
	// yet counted as exported or failed. abandoned is set when Shutdown's
	// context ended first: Shutdown then counted queue and taken as failed,
	// and the goroutine counts nothing more.
	taken     int
	abandoned bool
	finished  bool // the goroutine has exported all it will

	// exportCtx is the parent of every ExportSpans context; Shutdown
	// cancels it when it abandons the export.
	exportCtx    context.Context
	cancelExport context.CancelFunc

	kick  chan struct{}   // a full batch is waiting; 1-buffered
	flush chan chan error // ForceFlush requests
	stop  chan struct{}   // closed by Shutdown
	done  chan struct{}   // closed when the goroutine has exported the rest
	once  sync.Once

	expOnce sync.Once // shuts the exporter down
	expErr  error

	ended, exported, failed, dropped atomic.Int64
}

var _ sdktrace.SpanProcessor = (*Batcher)(nil)

// BatcherOptions configures a [Batcher]. A zero field takes the standard
// environment variable (OTEL_BSP_MAX_QUEUE_SIZE, OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
// OTEL_BSP_SCHEDULE_DELAY and OTEL_BSP_EXPORT_TIMEOUT, the last two in
// milliseconds) or else the default.
type BatcherOptions struct {
	// QueueSize bounds the spans waiting for export.
	QueueSize int
	// BatchSize is the most spans passed to one ExportSpans call; a full
	// batch is exported at once.
	BatchSize int
	// Interval is the longest a span waits before export.
	Interval time.Duration
	// Timeout bounds one ExportSpans call.
	Timeout time.Duration
	// Blocking makes OnEnd wait for room when the queue is full instead
	// of dropping the span, so a slow exporter slows the pipeline.
	Blocking bool
}

// NewBatcher starts a Batcher exporting to exp. Shutdown stops it.
func NewBatcher(exp sdktrace.SpanExporter, o BatcherOptions) *Batcher {
	b := &Batcher{
		exp:       exp,
		queueSize: orDefault(o.QueueSize, envInt("OTEL_BSP_MAX_QUEUE_SIZE", DefaultQueueSize)),
		batchSize: orDefault(o.BatchSize, envInt("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", DefaultBatchSize)),
		interval:  orDefault(o.Interval, envMillis("OTEL_BSP_SCHEDULE_DELAY", DefaultExportInterval)),
		timeout:   orDefault(o.Timeout, envMillis("OTEL_BSP_EXPORT_TIMEOUT", DefaultExportTimeout)),
		blocking:  o.Blocking,
		kick:      make(chan struct{}, 1),
		flush:     make(chan chan error),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	b.batchSize = min(b.batchSize, b.queueSize)
	b.notFull.L = &b.mu
	b.exportCtx, b.cancelExport = context.WithCancel(context.Background())
	go b.run()
	return b
}

func orDefault[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// envInt is the positive integer in environment variable name, or def.
func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

func envMillis(name string, def time.Duration) time.Duration {
	return time.Duration(envInt(name, int(def/time.Millisecond))) * time.Millisecond
}

// OnStart does nothing.
func (b *Batcher) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd queues s for export if it is sampled. When the queue is full it
// drops s, or waits for room if the Batcher is blocking.
func (b *Batcher) OnEnd(s sdktrace.ReadOnlySpan) {
	if !s.SpanContext().IsSampled() {
		return
	}
	b.ended.Add(1)
	b.mu.Lock()
	for b.blocking && !b.closed && len(b.queue) >= b.queueSize {
		b.notFull.Wait()
	}
	if b.closed || len(b.queue) >= b.queueSize {
		b.mu.Unlock()
		b.dropped.Add(1)
		return
	}
	b.queue = append(b.queue, s)
	full := len(b.queue) == b.batchSize
	b.mu.Unlock()
	if full {
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
}

// ForceFlush exports every queued span and returns the exporter's first
// error, or ctx's error if ctx ends first.
func (b *Batcher) ForceFlush(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case b.flush <- reply:
	case <-b.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Shutdown exports the queued spans, shuts the exporter down and stops the
// goroutine. Spans that end afterwards are dropped. If ctx ends first
// (typically: the collector is down and the exporter keeps retrying) it
// abandons the export: it counts every span not yet exported as failed,
// cancels the export in progress, and returns ctx's error. Either way,
// after Shutdown returns, Stats' Exported, Failed and Dropped add up to
// Ended.
func (b *Batcher) Shutdown(ctx context.Context) error {
	b.once.Do(func() {
		b.mu.Lock()
		b.closed = true
		b.notFull.Broadcast()
		b.mu.Unlock()
		close(b.stop)
	})
	select {
	case <-b.done:
		b.cancelExport()
		return b.shutdownExporter(ctx)
	case <-ctx.Done():
		b.abandon()
		return ctx.Err()
	}
}

// shutdownExporter shuts the exporter down once and returns its error.
func (b *Batcher) shutdownExporter(ctx context.Context) error {
	b.expOnce.Do(func() { b.expErr = b.exp.Shutdown(ctx) })
	return b.expErr
}

// abandon counts the spans still queued or being exported as failed and
// stops the goroutine from counting them again.
func (b *Batcher) abandon() {
	b.mu.Lock()
	if b.abandoned {
		b.mu.Unlock()
		return
	}
	b.abandoned = true
	b.failed.Add(int64(len(b.queue) + b.taken))
	clear(b.queue)
	b.queue, b.taken = b.queue[:0], 0
	finished := b.finished
	b.mu.Unlock()
	b.cancelExport()
	if finished { // the goroutine will not release the exporter
		b.releaseExporter()
	}
}

// releaseExporter shuts the exporter down after an abandoned Shutdown,
// giving it a second: the spans are counted already.
func (b *Batcher) releaseExporter() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = b.shutdownExporter(ctx)
}

// Stats returns the span counts so far.
func (b *Batcher) Stats() Stats {
	return Stats{
		Ended:    b.ended.Load(),
		Exported: b.exported.Load(),
		Failed:   b.failed.Load(),
		Dropped:  b.dropped.Load(),
	}
}

// run is the export goroutine.
func (b *Batcher) run() {
	defer close(b.done)
	tick := time.NewTicker(b.interval)
	defer tick.Stop()
	var spare []sdktrace.ReadOnlySpan
	for {
		var reply chan error
		select {
		case <-b.kick:
		case <-tick.C:
		case reply = <-b.flush:
		case <-b.stop:
			err := b.exportAll(&spare)
			b.mu.Lock()
			b.finished = true
			abandoned := b.abandoned
			b.mu.Unlock()
			if abandoned {
				// Shutdown gave up and returned: release the exporter here.
				b.releaseExporter()
			} else if err != nil {
				otel.Handle(err)
			}
			return
		}
		err := b.exportAll(&spare)
		if reply != nil {
			reply <- err
		} else if err != nil {
			otel.Handle(err)
		}
	}
}

// settle counts n taken spans as exported or failed, unless Shutdown
// abandoned them and counted them already.
func (b *Batcher) settle(n int, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.abandoned {
		return
	}
	b.taken -= n
	if ok {
		b.exported.Add(int64(n))
	} else {
		b.failed.Add(int64(n))
	}
}

// exportAll takes the queue, leaving spare in its place, and exports it in
// batches. The taken slice becomes the next spare.
func (b *Batcher) exportAll(spare *[]sdktrace.ReadOnlySpan) error {
	b.mu.Lock()
	spans := b.queue
	b.queue = (*spare)[:0]
	b.taken = len(spans)
	b.notFull.Broadcast()
	b.mu.Unlock()
	var errs []error
	for i := 0; i < len(spans); i += b.batchSize {
		batch := spans[i:min(i+b.batchSize, len(spans))]
		if b.exportCtx.Err() != nil {
			break // abandoned: Shutdown counted these
		}
		ctx, cancel := context.WithTimeout(b.exportCtx, b.timeout)
		err := b.exp.ExportSpans(ctx, batch)
		cancel()
		if err != nil {
			errs = append(errs, err)
		}
		b.settle(len(batch), err == nil)
	}
	clear(spans)
	*spare = spans[:0]
	return errors.Join(errs...)
}
