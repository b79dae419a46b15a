package stages

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/windowing"
)

type result = windowing.Result[*pipeline.Message]

// windowRun is the state of one Run: its tasks (window_task.go: one
// engine, with the window contents and a watermark, per source partition,
// or one for all), the clock timer that closes windows while no message
// arrives, and the early-results timer. The Run goroutine owns it.
type windowRun struct {
	w     *windowStage
	out   pipeline.Outlet
	tasks map[string]*task // by partition
	// blocked holds, per source partition, the read epoch whose messages
	// a dropped task nacked (window_task.go).
	blocked map[string]string
	clockT  timer
	earlyT  timer
	d       *durable             // nil without a state: block
	warned  map[string]time.Time // rate-limited warnings by kind
}

// timer is a clock timer that may be off.
type timer struct {
	t pipeline.Timer
	c <-chan time.Time
}

func (t *timer) set(clock pipeline.Clock, d time.Duration) {
	if t.t == nil {
		t.t = clock.NewTimer(d)
	} else {
		t.t.Stop()
		t.t.Reset(d)
	}
	t.c = t.t.C()
}

func (t *timer) stop() {
	if t.t != nil {
		t.t.Stop()
	}
	t.c = nil
}

// Run windows messages until in closes, then emits every open window:
// final results at the end of input, partial ones ("final": false) at a
// soft stop. At the hard stop it nacks every held message and returns an
// error wrapping pipeline.ErrAbandoned if it held any.
//
// With durable state (window_durable.go) it restores each partition's task
// from the store at the partition's first message, commits a checkpoint
// every checkpoint_interval, acks source messages by checkpoint, and at a
// soft stop commits instead of emitting: open windows stay in the store for
// the next run.
func (w *windowStage) Run(ctx context.Context, in <-chan *pipeline.Message, out pipeline.Outlet) error {
	r := &windowRun{w: w, out: out, tasks: map[string]*task{}, blocked: map[string]string{}, warned: map[string]time.Time{}}
	if w.backend != nil {
		d, err := w.openDurable()
		if err != nil {
			return err
		}
		r.d = d
	}
	defer r.clockT.stop()
	defer r.earlyT.stop()
	for {
		var err error
		select {
		case <-ctx.Done():
			return r.abandon(ctx.Err())
		case m, ok := <-in:
			if !ok {
				return r.finish(ctx)
			}
			err = r.add(ctx, m)
		case <-r.clockT.c:
			err = r.closeByClock(ctx)
			r.armClock()
		case <-r.earlyT.c:
			r.earlyT.c = nil
			err = r.sendEarly(ctx)
			r.armEarly()
		case <-r.d.tick():
			var fenced error
			fenced, err = r.checkpoint(ctx)
			// Re-arm before the hook: a test that moves the clock once the
			// hook has run must find the next checkpoint already due then.
			r.d.timer.set(w.clock, w.backend.CheckpointInterval())
			if w.committed != nil {
				w.committed(errors.Join(fenced, err))
			}
		}
		if err != nil {
			return r.abandon(err)
		}
	}
}

// add evaluates m's key, event time, aggregate arguments and ends_when,
// then hands it to the engine. A message whose evaluation fails goes to
// the dead-letter path; one late for every window, to on_late.
func (r *windowRun) add(ctx context.Context, m *pipeline.Message) error {
	w := r.w
	if w.added != nil {
		defer w.added()
	}
	if m.Batch() != nil {
		r.out.Fail(ctx, m, errBatch("window"))
		return nil
	}
	var at position // only a task per partition or a checkpoint needs it
	if r.d != nil || w.partitioned {
		at = positionOf(m)
	}
	t, ok, err := r.taskFor(ctx, m, at)
	if err != nil {
		m.Nack(err)
		return err
	}
	if !ok {
		m.Nack(errStaleRead)
		return nil
	}
	if t.replayed(m, at) {
		w.replayedN.Add(1)
		return nil
	}
	now := w.clock.Now()
	ev, err := w.event(m, now)
	if err != nil {
		r.out.Fail(ctx, m, err)
		return nil
	}
	added, res, err := t.e.Add(ev)
	if err != nil {
		r.out.Fail(ctx, m, pipeline.WithReason(pipeline.ReasonExpression, err))
		return nil
	}
	t.last = now
	if r.d != nil && added.Windows > 0 {
		r.d.fold(w, t, m, at)
	}
	if added.Windows == 0 {
		w.late.Add(1)
		lateErr := fmt.Errorf("event time %s is behind the watermark %s for every window it belongs to",
			fmtTime(ev.Time), fmtTime(t.e.Watermark()))
		if w.cfg.OnLate == "dead_letter" {
			r.out.Fail(ctx, m, pipeline.WithReason(ReasonLate, lateErr))
		} else {
			r.warn("late", "late messages dropped", "last", lateErr.Error(), "late_total", w.late.Load())
			r.out.Drop(m, ReasonLate)
		}
	}
	if len(res) > 0 {
		t.dirty = t.dirty || r.d != nil // windows closed
	}
	err = r.emit(ctx, res)
	r.armClock()
	r.armEarly()
	return err
}

// event evaluates m into an engine event.
func (w *windowStage) event(m *pipeline.Message, now time.Time) (windowing.Event[*pipeline.Message], error) {
	ev := windowing.Event[*pipeline.Message]{Member: m, Time: now.UnixNano(), Values: make([]any, len(w.args))}
	if w.backend != nil {
		ev.Member = nil // acked by the checkpoint, not by its windows
	}
	in := input(m)
	defer keepDecoded(m, &in)
	if w.cfg.Key != nil {
		v, err := w.cfg.Key.EvalNative(&in)
		if err != nil {
			return ev, evalError(fmt.Errorf("key: %w", err))
		}
		if ev.KeyJSON, err = json.Marshal(v); err != nil {
			return ev, evalError(fmt.Errorf("key: %w", err))
		}
		ev.Key = string(ev.KeyJSON)
	}
	if w.cfg.EventTime != nil {
		v, err := w.cfg.EventTime.EvalNative(&in)
		if err != nil {
			return ev, evalError(fmt.Errorf("event_time: %w", err))
		}
		if ev.Time, err = eventTime(v); err != nil {
			return ev, pipeline.WithReason(pipeline.ReasonInvalidPayload, fmt.Errorf("event_time: %w", err))
		}
	}
	for i, p := range w.args {
		if p == nil {
			continue
		}
		v, err := p.EvalNative(&in)
		if err != nil {
			return ev, evalError(fmt.Errorf("aggregate %q: %w", w.spec.Aggs[i].Name, err))
		}
		ev.Values[i] = v
	}
	if w.cfg.EndsWhen != nil {
		end, err := w.cfg.EndsWhen.EvalBool(&in)
		if err != nil {
			return ev, evalError(fmt.Errorf("ends_when: %w", err))
		}
		ev.EndsSession = end
	}
	return ev, nil
}

// maxEventTime is the engine's bound on event times.
const maxEventTime = windowing.MaxTime

// eventTime reads a timestamp (as EvalNative renders it, RFC 3339), an
// RFC 3339 string, or epoch milliseconds, within maxEventTime of 1970.
func eventTime(v any) (int64, error) {
	const maxMs = maxEventTime / int64(time.Millisecond)
	switch x := v.(type) {
	case string:
		t, err := time.Parse(time.RFC3339Nano, x)
		if err != nil {
			return 0, fmt.Errorf("%q is not an RFC 3339 time", x)
		}
		if t.Before(time.Unix(0, -maxEventTime)) || t.After(time.Unix(0, maxEventTime)) {
			return 0, fmt.Errorf("%q is out of range (1824 to 2116)", x)
		}
		return t.UnixNano(), nil
	case int64:
		if x > maxMs || x < -maxMs {
			return 0, fmt.Errorf("%d epoch milliseconds is out of range", x)
		}
		return x * int64(time.Millisecond), nil
	case uint64:
		if x > uint64(maxMs) {
			return 0, fmt.Errorf("%d epoch milliseconds is out of range", x)
		}
		return int64(x) * int64(time.Millisecond), nil
	case float64:
		if math.IsNaN(x) || math.Abs(x) > float64(maxMs) {
			return 0, fmt.Errorf("%v epoch milliseconds is out of range", x)
		}
		return int64(x * float64(time.Millisecond)), nil
	}
	return 0, fmt.Errorf("want a timestamp, an RFC 3339 string or epoch milliseconds, got %s", windowing.TypeName(v))
}

// finish emits every open window when in closed. With durable state, a
// soft stop commits them instead (the next run resumes them), and the end
// of input emits them and then commits the empty state.
func (r *windowRun) finish(ctx context.Context) error {
	reason := windowing.ReasonEndOfInput
	if pipeline.Stopping(ctx) {
		reason = windowing.ReasonShutdown
	}
	var res []result
	if r.d == nil || reason == windowing.ReasonEndOfInput {
		for _, part := range slices.Sorted(maps.Keys(r.tasks)) {
			t := r.tasks[part]
			flushed := t.e.Flush(reason)
			t.dirty = t.dirty || len(flushed) > 0
			res = append(res, flushed...)
		}
	}
	if r.d == nil && reason == windowing.ReasonShutdown && len(res) > 0 {
		r.w.log.Info("window: soft stop without durable state: emitting open windows as partial results (\"final\": false)", "windows", len(res))
	}
	if err := r.emit(ctx, res); err != nil {
		return r.abandon(err)
	}
	if r.d == nil {
		return nil
	}
	if _, err := r.checkpoint(ctx); err != nil {
		return r.abandon(err)
	}
	if reason == windowing.ReasonShutdown {
		r.w.log.Info("window: soft stop: open windows committed to the state store, not emitted", "windows", r.openWindows(), "partitions", len(r.tasks), "scope", r.w.scope)
	}
	for _, t := range r.tasks {
		r.drop(t, nil)
	}
	r.d.release()
	return nil
}

// emit sends closed windows on, in order. It fails only at the hard stop.
func (r *windowRun) emit(ctx context.Context, res []result) error {
	for i, x := range res {
		r.w.closed[reasonIndex(x.Reason)].Add(1)
		if x.Reason == windowing.ReasonEvicted {
			r.warn("evicted", "max_open reached: emitting the oldest windows early (reason evicted)", "max_open", r.w.cfg.MaxOpen)
		}
		if err := r.send(ctx, x); err != nil {
			for _, rest := range res[i+1:] {
				nackAll(rest.Members, err)
			}
			return err
		}
	}
	r.w.open.Store(int64(r.openWindows()))
	return nil
}

// send encodes x and sends it; its message acks x's members when resolved.
func (r *windowRun) send(ctx context.Context, x result) error {
	body, err := r.w.body(x)
	if err != nil { // cannot happen: the engine checked every value
		nackAll(x.Members, err)
		return nil
	}
	members := x.Members
	var tracked func(error)
	if r.d != nil {
		tracked = r.d.track()
	}
	m := pipeline.NewMessage(body, func(err error) {
		if tracked != nil {
			tracked(err)
		}
		for _, mm := range members {
			if mm == nil {
				continue
			}
			if err == nil {
				mm.Ack()
			} else {
				mm.Nack(err)
			}
		}
	})
	m.Created = r.w.clock.Now()
	reason := string(x.Reason)
	if !x.Final && x.Reason != windowing.ReasonShutdown {
		reason = "early"
	}
	m.Meta = map[string]string{MetaWindowReason: reason}
	return r.out.Send(ctx, m)
}

func nackAll(ms []*pipeline.Message, err error) {
	for _, m := range ms {
		if m != nil {
			m.Nack(err)
		}
	}
}

// clockDue returns when the clock closes t's next window: on processing
// time always, on event time after idle_timeout; ok is false if never.
func (r *windowRun) clockDue(t *task) (time.Time, bool) {
	idle := r.w.cfg.IdleTimeout
	switch {
	case r.w.cfg.EventTime == nil:
		idle = 0 // the clock is the event time: no quiet spell to wait for
	case idle <= 0:
		return time.Time{}, false
	}
	next, ok := t.e.NextClose()
	if !ok {
		return time.Time{}, false
	}
	return t.last.Add(max(next, idle)), true
}

// armClock points the clock timer at the next window the clock closes,
// over every task.
func (r *windowRun) armClock() {
	var first time.Time
	for _, t := range r.tasks {
		if due, ok := r.clockDue(t); ok && (first.IsZero() || due.Before(first)) {
			first = due
		}
	}
	if first.IsZero() {
		r.clockT.stop()
		return
	}
	r.clockT.set(r.w.clock, first.Sub(r.w.clock.Now()))
}

// closeByClock advances every task whose clock close is due.
func (r *windowRun) closeByClock(ctx context.Context) error {
	reason := windowing.ReasonIdle
	if r.w.cfg.EventTime == nil {
		reason = windowing.ReasonWatermark
	}
	now := r.w.clock.Now()
	for _, part := range slices.Sorted(maps.Keys(r.tasks)) {
		t := r.tasks[part]
		if due, ok := r.clockDue(t); !ok || due.After(now) {
			continue
		}
		res := t.e.AdvanceClock(now.Sub(t.last), reason)
		if len(res) > 0 {
			t.dirty = t.dirty || r.d != nil
		}
		if err := r.emit(ctx, res); err != nil {
			return err
		}
	}
	return nil
}

// sendEarly sends an early result of every changed open window.
func (r *windowRun) sendEarly(ctx context.Context) error {
	for _, part := range slices.Sorted(maps.Keys(r.tasks)) {
		for _, res := range r.tasks[part].e.Early() {
			r.w.early.Add(1)
			if err := r.send(ctx, res); err != nil {
				return err
			}
		}
	}
	return nil
}

// armEarly points the early timer, if it is not armed, at the next
// multiple of emit.every while windows are open.
func (r *windowRun) armEarly() {
	every := r.w.cfg.Emit.Every
	if every <= 0 || r.earlyT.c != nil || r.openWindows() == 0 {
		return
	}
	now := r.w.clock.Now()
	due := now.Truncate(every).Add(every)
	r.earlyT.set(r.w.clock, due.Sub(now))
}

// warn logs at most once per minute per kind.
func (r *windowRun) warn(kind, msg string, args ...any) {
	now := r.w.clock.Now()
	if t, ok := r.warned[kind]; ok && now.Sub(t) < time.Minute {
		return
	}
	r.warned[kind] = now
	r.w.log.Warn("window: "+msg, args...)
}

// abandon nacks every held message at the hard stop, or when a durable
// checkpoint failed (cause): the broker redelivers them and the next owner
// replays them onto the last committed state.
func (r *windowRun) abandon(cause error) error {
	n := 0
	for _, t := range r.tasks {
		for _, x := range t.e.Flush(windowing.ReasonShutdown) {
			nackAll(x.Members, pipeline.ErrAbandoned)
			n += len(x.Members)
		}
		n += len(t.held)
		r.drop(t, pipeline.ErrAbandoned)
	}
	r.w.open.Store(0)
	if r.d != nil {
		r.d.release()
		if cause != nil && !errors.Is(cause, context.Canceled) && !errors.Is(cause, context.DeadlineExceeded) {
			return fmt.Errorf("%w (nacked %d messages folded since the last checkpoint)", cause, n)
		}
	}
	if n == 0 {
		return nil
	}
	return fmt.Errorf("nacked %d held messages: %w", n, pipeline.ErrAbandoned)
}

func reasonIndex(r windowing.Reason) int {
	for i, x := range windowReasons {
		if x == r {
			return i
		}
	}
	return 0
}
