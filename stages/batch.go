package stages

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/expr"
	"github.com/pipe-dsl/pipe/pipeline"
)

// Why a batch was flushed: the value of its [MetaFlushReason].
const (
	FlushSize     = "size"     // it reached size messages
	FlushBytes    = "bytes"    // it reached max_bytes, or the next message would pass it
	FlushWait     = "wait"     // max_wait passed since its first message
	FlushShutdown = "shutdown" // the input closed (soft stop or end of input)
	FlushKeys     = "keys"     // a new key needed its slot in the max_keys table
)

// Meta keys of a batch message.
const (
	MetaFlushReason = "batch.flush_reason"
	MetaBatchKey    = "batch.key" // set only when the stage has a key
)

var flushReasons = [...]string{FlushSize, FlushBytes, FlushWait, FlushShutdown, FlushKeys}

type batchConfig struct {
	Size        int            `pipe:"size" desc:"Flush when the batch holds this many messages; 0 means no count limit." example:"100" min:"0"`
	MaxBytes    component.Size `pipe:"max_bytes" desc:"Flush when the summed body sizes reach this, and before a message that would pass it (a larger message goes out alone); 0 means no byte limit." example:"1MiB" min:"0"`
	MaxWait     time.Duration  `pipe:"max_wait" desc:"Flush this long after the batch's first message arrived, however many follow; 0 means no time limit." example:"50ms" min:"0"`
	MaxInFlight int            `pipe:"max_in_flight" desc:"How many flushed batches may be outstanding downstream (not yet acked or nacked); at the limit the stage stops reading. 0 means unbounded." example:"4" min:"0"`
	Key         *expr.Program  `pipe:"key" desc:"CEL expression: messages are batched separately per value (a string, or the value as JSON). Unset means one batch." example:"msg.tenant"`
	MaxKeys     int            `pipe:"max_keys" desc:"Most keys with an open batch; a message with a new key beyond it first flushes the oldest open batch." example:"1000" min:"1"`
}

func init() {
	component.Register(component.Stage("batch",
		"Groups messages into batches, flushed by count, bytes or time since the first message; sinks write a batch in one call.",
		batchConfig{MaxKeys: 1000}, newBatch, component.WithBatching(component.BatchesEmit)))
}

// batch groups messages into batch messages (pipeline.NewBatch).
//
//	in  -- a - b - c ------------ d - e --|
//	        [ size: 3, max_wait: W ]
//	out ----------- [a b c] ---------------- [d e] (wait, W after d) or at | (shutdown)
//
// A batch is acked, and acks its members, only when every sink it reached
// accepted it; nacking it nacks every member. Each batch's meta holds why
// it was flushed ([MetaFlushReason]).
//
// go-streams' flow.Batch is not used: its ticker restarts at every flush,
// so max_wait counts from the last flush rather than from the batch's first
// message, and it runs on the wall clock with no ack or in-flight bound.
type batch struct {
	cfg   batchConfig
	clock pipeline.Clock

	flushes [len(flushReasons)]atomic.Int64
	// waiting, if set, is called when a flush starts waiting for an
	// in-flight slot (a test hook).
	waiting func()
}

var (
	_ pipeline.Stage    = (*batch)(nil)
	_ pipeline.Reporter = (*batch)(nil)
)

func newBatch(c *batchConfig, env component.Env) (any, error) {
	if c.Size == 0 && c.MaxBytes == 0 && c.MaxWait == 0 {
		return nil, errors.New("set at least one of size, max_bytes or max_wait")
	}
	if c.MaxKeys <= 0 {
		c.MaxKeys = 1
	}
	clock := env.Clock
	if clock == nil {
		clock = pipeline.SystemClock
	}
	return &batch{cfg: *c, clock: clock}, nil
}

// Stats returns how many batches were flushed, by flush reason (size,
// bytes, wait, shutdown, keys). It is safe for concurrent use.
func (b *batch) Stats() map[string]int64 {
	out := make(map[string]int64, len(flushReasons))
	for i, r := range flushReasons {
		out[r] = b.flushes[i].Load()
	}
	return out
}

// Report returns the batches flushed, by flush reason.
func (b *batch) Report() []pipeline.Figure {
	out := make([]pipeline.Figure, len(flushReasons))
	for i, r := range flushReasons {
		out[i] = pipeline.Figure{Name: "flushes", Help: "Batches flushed, by flush reason.", Kind: pipeline.Counter,
			Label: "reason", LabelValue: r, Value: float64(b.flushes[i].Load())}
	}
	return out
}

func (b *batch) count(reason string) {
	for i, r := range flushReasons {
		if r == reason {
			b.flushes[i].Add(1)
		}
	}
}

// Run batches until in closes, then flushes what it holds. At the hard stop
// it nacks what it holds and returns an error wrapping
// pipeline.ErrAbandoned if that was anything.
func (b *batch) Run(ctx context.Context, in <-chan *pipeline.Message, out pipeline.Outlet) error {
	r := &batchRun{b: b, out: out, byKey: map[string]*openBatch{}}
	if b.cfg.MaxInFlight > 0 {
		r.slots = make(chan struct{}, b.cfg.MaxInFlight)
	}
	defer r.stopTimer()
	for {
		var err error
		select {
		case <-ctx.Done():
			return r.abandon()
		case m, ok := <-in:
			if !ok {
				for len(r.open) > 0 && err == nil {
					err = r.flush(ctx, r.open[0], FlushShutdown)
				}
				if err != nil {
					return r.abandon()
				}
				return nil
			}
			err = r.add(ctx, m)
		case <-r.timerC:
			err = r.expire(ctx)
		}
		if err != nil {
			return r.abandon()
		}
	}
}

// openBatch is a batch being filled.
type openBatch struct {
	key     string
	members []*pipeline.Message
	bytes   int64
	due     time.Time // first message + max_wait
}

// batchRun is the state of one Run: open batches oldest first, which is
// also deadline order, and one timer for the oldest's deadline.
type batchRun struct {
	b      *batch
	out    pipeline.Outlet
	open   []*openBatch
	byKey  map[string]*openBatch
	slots  chan struct{} // nil without max_in_flight
	timer  pipeline.Timer
	timerC <-chan time.Time
}

func (r *batchRun) add(ctx context.Context, m *pipeline.Message) error {
	cfg := &r.b.cfg
	if m.Batch() != nil {
		r.out.Fail(ctx, m, errBatch("batch"))
		return nil
	}
	key := ""
	if cfg.Key != nil {
		k, err := batchKey(cfg.Key, m)
		if err != nil {
			r.out.Fail(ctx, m, err)
			return nil
		}
		key = k
	}
	size := int64(len(m.Body))
	ob := r.byKey[key]
	if ob != nil && cfg.MaxBytes > 0 && ob.bytes+size > int64(cfg.MaxBytes) {
		if err := r.flush(ctx, ob, FlushBytes); err != nil {
			m.Nack(err)
			return err
		}
		ob = nil
	}
	if ob == nil {
		if len(r.open) >= cfg.MaxKeys {
			if err := r.flush(ctx, r.open[0], FlushKeys); err != nil {
				m.Nack(err)
				return err
			}
		}
		ob = &openBatch{key: key, due: r.b.clock.Now().Add(cfg.MaxWait)}
		r.open = append(r.open, ob)
		r.byKey[key] = ob
		if len(r.open) == 1 {
			r.rearm()
		}
	}
	ob.members = append(ob.members, m)
	ob.bytes += size
	switch {
	case cfg.Size > 0 && len(ob.members) >= cfg.Size:
		return r.flush(ctx, ob, FlushSize)
	case cfg.MaxBytes > 0 && ob.bytes >= int64(cfg.MaxBytes):
		return r.flush(ctx, ob, FlushBytes)
	}
	return nil
}

// expire flushes every batch whose max_wait has passed.
func (r *batchRun) expire(ctx context.Context) error {
	now := r.b.clock.Now()
	for len(r.open) > 0 && !r.open[0].due.After(now) {
		if err := r.flush(ctx, r.open[0], FlushWait); err != nil {
			return err
		}
	}
	r.rearm()
	return nil
}

// flush removes ob from the open batches and sends it on, waiting for an
// in-flight slot first. It fails only at the hard stop, with ob nacked.
func (r *batchRun) flush(ctx context.Context, ob *openBatch, reason string) error {
	i := 0
	for r.open[i] != ob {
		i++
	}
	r.open = append(r.open[:i], r.open[i+1:]...)
	delete(r.byKey, ob.key)
	if i == 0 {
		r.rearm()
	}
	var done pipeline.AckFunc
	if r.slots != nil {
		if err := r.acquire(ctx); err != nil {
			for _, m := range ob.members {
				m.Nack(pipeline.ErrAbandoned)
			}
			return err
		}
		slots := r.slots
		done = func(error) { <-slots }
	}
	bm := pipeline.NewBatchFunc(ob.members, done)
	bm.Meta = map[string]string{MetaFlushReason: reason}
	if r.b.cfg.Key != nil {
		bm.Meta[MetaBatchKey] = ob.key
	}
	r.b.count(reason)
	return r.out.Send(ctx, bm)
}

func (r *batchRun) acquire(ctx context.Context) error {
	select {
	case r.slots <- struct{}{}:
		return nil
	default:
	}
	if r.b.waiting != nil {
		r.b.waiting()
	}
	select {
	case r.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// rearm points the timer at the oldest open batch's deadline.
func (r *batchRun) rearm() {
	if r.b.cfg.MaxWait <= 0 {
		return
	}
	if len(r.open) == 0 {
		r.stopTimer()
		return
	}
	d := r.open[0].due.Sub(r.b.clock.Now())
	if r.timer == nil {
		r.timer = r.b.clock.NewTimer(d)
	} else {
		r.timer.Reset(d)
	}
	r.timerC = r.timer.C()
}

func (r *batchRun) stopTimer() {
	if r.timer != nil {
		r.timer.Stop()
	}
	r.timerC = nil
}

// abandon nacks every held message at the hard stop.
func (r *batchRun) abandon() error {
	n := 0
	for _, ob := range r.open {
		for _, m := range ob.members {
			m.Nack(pipeline.ErrAbandoned)
			n++
		}
	}
	r.open, r.byKey = nil, nil
	if n == 0 {
		return nil
	}
	return fmt.Errorf("nacked %d held messages: %w", n, pipeline.ErrAbandoned)
}

// batchKey evaluates the key expression for m.
func batchKey(p *expr.Program, m *pipeline.Message) (string, error) {
	in := input(m)
	v, err := p.EvalNative(&in)
	keepDecoded(m, &in)
	if err != nil {
		return "", evalError(fmt.Errorf("key: %w", err))
	}
	if s, ok := v.(string); ok {
		return s, nil
	}
	b, err := expr.EncodeJSON(v)
	if err != nil {
		return "", evalError(fmt.Errorf("key: %w", err))
	}
	return string(b), nil
}
