package stages

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/windowing"
)

type result = windowing.Result[*pipeline.Message]

// windowRun is the state of one Run: the engine (all window contents and
// the watermark, owned by the Run goroutine), the clock timer that closes
// windows while no message arrives, and the early-results timer.
type windowRun struct {
	w      *windowStage
	out    pipeline.Outlet
	e      *windowing.Engine[*pipeline.Message]
	last   time.Time // arrival of the last message
	clockT timer
	earlyT timer
	warned map[string]time.Time // rate-limited warnings by kind
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
func (w *windowStage) Run(ctx context.Context, in <-chan *pipeline.Message, out pipeline.Outlet) error {
	e, err := windowing.New[*pipeline.Message](w.spec)
	if err != nil {
		return err
	}
	e.Dup = (*pipeline.Message).Copy
	r := &windowRun{w: w, out: out, e: e, warned: map[string]time.Time{}}
	defer r.clockT.stop()
	defer r.earlyT.stop()
	for {
		var err error
		select {
		case <-ctx.Done():
			return r.abandon()
		case m, ok := <-in:
			if !ok {
				return r.finish(ctx)
			}
			err = r.add(ctx, m)
		case <-r.clockT.c:
			reason := windowing.ReasonIdle
			if w.cfg.EventTime == nil {
				reason = windowing.ReasonWatermark
			}
			err = r.emit(ctx, e.AdvanceClock(w.clock.Now().Sub(r.last), reason))
			r.armClock()
		case <-r.earlyT.c:
			r.earlyT.c = nil
			for _, res := range e.Early() {
				w.early.Add(1)
				if err = r.send(ctx, res); err != nil {
					break
				}
			}
			r.armEarly()
		}
		if err != nil {
			return r.abandon()
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
	now := w.clock.Now()
	ev, err := w.event(m, now)
	if err != nil {
		r.out.Fail(ctx, m, err)
		return nil
	}
	added, res, err := r.e.Add(ev)
	if err != nil {
		r.out.Fail(ctx, m, pipeline.WithReason(pipeline.ReasonExpression, err))
		return nil
	}
	r.last = now
	if added.Windows == 0 {
		w.late.Add(1)
		lateErr := fmt.Errorf("event time %s is behind the watermark %s for every window it belongs to",
			fmtTime(ev.Time), fmtTime(r.e.Watermark()))
		if w.cfg.OnLate == "dead_letter" {
			r.out.Fail(ctx, m, pipeline.WithReason(ReasonLate, lateErr))
		} else {
			r.warn("late", "late messages dropped", "last", lateErr.Error(), "late_total", w.late.Load())
			r.out.Drop(m, ReasonLate)
		}
	}
	err = r.emit(ctx, res)
	r.armClock()
	r.armEarly()
	return err
}

// event evaluates m into an engine event.
func (w *windowStage) event(m *pipeline.Message, now time.Time) (windowing.Event[*pipeline.Message], error) {
	ev := windowing.Event[*pipeline.Message]{Member: m, Time: now.UnixNano(), Values: make([]any, len(w.args))}
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

// finish emits every open window when in closed.
func (r *windowRun) finish(ctx context.Context) error {
	reason := windowing.ReasonEndOfInput
	if pipeline.Stopping(ctx) {
		reason = windowing.ReasonShutdown
	}
	res := r.e.Flush(reason)
	if reason == windowing.ReasonShutdown && len(res) > 0 {
		r.w.log.Info("window: soft stop without durable state: emitting open windows as partial results (\"final\": false)", "windows", len(res))
	}
	if err := r.emit(ctx, res); err != nil {
		return r.abandon()
	}
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
	r.w.open.Store(int64(r.e.Open()))
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
	m := pipeline.NewMessage(body, func(err error) {
		for _, mm := range members {
			if err == nil {
				mm.Ack()
			} else {
				mm.Nack(err)
			}
		}
	})
	m.Created = r.w.clock.Now()
	reason := string(x.Reason)
	if x.Members == nil && x.Reason != windowing.ReasonShutdown {
		reason = "early"
	}
	m.Meta = map[string]string{MetaWindowReason: reason}
	return r.out.Send(ctx, m)
}

func nackAll(ms []*pipeline.Message, err error) {
	for _, m := range ms {
		m.Nack(err)
	}
}

// armClock points the clock timer at the next window the clock closes:
// on processing time always, on event time after idle_timeout.
func (r *windowRun) armClock() {
	idle := r.w.cfg.IdleTimeout
	switch {
	case r.w.cfg.EventTime == nil:
		idle = 0 // the clock is the event time: no quiet spell to wait for
	case idle <= 0:
		return
	}
	next, ok := r.e.NextClose()
	if !ok {
		r.clockT.stop()
		return
	}
	due := r.last.Add(max(next, idle))
	r.clockT.set(r.w.clock, due.Sub(r.w.clock.Now()))
}

// armEarly points the early timer, if it is not armed, at the next
// multiple of emit.every while windows are open.
func (r *windowRun) armEarly() {
	every := r.w.cfg.Emit.Every
	if every <= 0 || r.earlyT.c != nil || r.e.Open() == 0 {
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

// abandon nacks every held message at the hard stop.
func (r *windowRun) abandon() error {
	n := 0
	for _, x := range r.e.Flush(windowing.ReasonShutdown) {
		nackAll(x.Members, pipeline.ErrAbandoned)
		n += len(x.Members)
	}
	r.w.open.Store(0)
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
