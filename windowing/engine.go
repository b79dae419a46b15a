// Package windowing is the pure engine of the window stage: keyed
// event-time windows (tumbling, sliding, session), the watermark that closes
// them, and their aggregates, all in one value that can be serialized.
//
// An [Engine] owns no goroutine and reads no clock: every call takes its
// time explicitly, so its results depend only on the order of its inputs.
// It is not safe for concurrent use; one goroutine (the stage's Run) owns it.
//
// Rules (docs/windows.md has the picture):
//   - Windows are half-open [start, end) and aligned to the Unix epoch.
//   - The watermark W is the largest event time seen minus max_out_of_order,
//     -inf before the first event.
//   - An event at t, for each window w it belongs to, is late for w when
//     w.end + allowed_lateness <= W; otherwise it is added to w. Then W
//     advances with t, and every window with end + allowed_lateness <= W
//     closes, in order of end, then key, then start.
//
// Time is int64 nanoseconds since the Unix epoch throughout.
package windowing

import (
	"fmt"
	"time"
)

// Window is one open (key, [start, end)) pair and its aggregates. Members
// are the engine user's tokens (the stage's messages); they are not part
// of [State].
type Window[M any] struct {
	Key     string // the key as a string ("" without a key)
	KeyJSON []byte // the key as JSON, nil without a key
	Start   int64
	End     int64
	Accs    []Acc
	members []M
	dirty   bool // changed since the last early result
	idx     int  // position in the close heap
}

// Result is a window emitted by the engine.
type Result[M any] struct {
	Key     string
	KeyJSON []byte
	Start   int64
	End     int64
	Reason  Reason
	// Final is false for early results and partial results at shutdown.
	Final bool
	// Values are the aggregates' outputs, in Spec.Aggs order.
	Values []any
	// Members are the tokens added to the window; nil on early results.
	Members []M
}

// Engine holds the open windows of one stage. The zero value is not usable;
// use [New] or [Restore].
type Engine[M any] struct {
	spec     Spec
	w        int64 // watermark
	maxEvent int64
	seen     bool
	byKey    map[string][]*Window[M]
	heap     closeHeap[M]
	// Dup, if set, returns a second token for a member added to more than
	// one window (the stage copies the message so each window holds one).
	Dup func(M) M
}

// New returns an empty engine for spec.
func New[M any](spec Spec) (*Engine[M], error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	return &Engine[M]{spec: spec, w: NoWatermark, maxEvent: NoWatermark, byKey: map[string][]*Window[M]{}}, nil
}

// Watermark returns the current watermark, or NoWatermark.
func (e *Engine[M]) Watermark() int64 { return e.w }

// Open returns how many (key, window) pairs are open.
func (e *Engine[M]) Open() int { return len(e.heap) }

// Added says what Add did with one event.
type Added struct {
	Windows int // windows the event was added to
	Late    int // windows it was late for
}

// Event is one input of Add.
type Event[M any] struct {
	Key     string
	KeyJSON []byte // nil without a key
	Time    int64
	// Values are the aggregates' argument values, in Spec.Aggs order, as
	// expr's EvalNative returns them (nil for count).
	Values []any
	// EndsSession closes the event's session once it is added (ends_when).
	EndsSession bool
	Member      M
}

// Add applies one event: it is added to each window it belongs to that is
// not late, then the watermark advances and windows it passed close. It
// returns the emitted windows in order (evicted ones first, then session
// ends, then by the watermark). An error means a value has the wrong type
// for its aggregate; the engine is then unchanged.
func (e *Engine[M]) Add(ev Event[M]) (Added, []Result[M], error) {
	if ev.Time > MaxTime || ev.Time < -MaxTime {
		return Added{}, nil, fmt.Errorf("event time %d is beyond ±2^62 ns (1824 to 2116)", ev.Time)
	}
	if err := checkValues(e.spec.Aggs, ev.Values); err != nil {
		return Added{}, nil, err
	}
	var out []Result[M]
	var added Added
	first := true
	member := func() M {
		if first || e.Dup == nil {
			first = false
			return ev.Member
		}
		return e.Dup(ev.Member)
	}
	lateness := int64(e.spec.AllowedLateness)
	if e.spec.Type == Session {
		w, late := e.session(ev, &out)
		if late {
			added.Late++
		} else {
			e.put(w, ev, member())
			added.Windows++
			if ev.EndsSession {
				out = append(out, e.close(w, ReasonSessionEnd, true))
			}
		}
	} else {
		e.assign(ev.Time, func(start, end int64) {
			if e.w != NoWatermark && end+lateness <= e.w {
				added.Late++
				return
			}
			w := e.window(ev.Key, ev.KeyJSON, start, end, &out)
			e.put(w, ev, member())
			added.Windows++
		})
	}
	if !e.seen || ev.Time > e.maxEvent {
		e.seen = true
		e.maxEvent = ev.Time
		e.raise(satSub(ev.Time, int64(e.spec.MaxOutOfOrder)), ReasonWatermark, &out)
	}
	return added, out, nil
}

// put adds ev's values and member to w.
func (e *Engine[M]) put(w *Window[M], ev Event[M], m M) {
	for i, a := range e.spec.Aggs {
		w.Accs[i].add(&a, ev.Values[i], ev.Time)
	}
	w.members = append(w.members, m)
	w.dirty = true
}

// assign calls f with every window of a tumbling or sliding spec that
// covers t, earliest start first.
func (e *Engine[M]) assign(t int64, f func(start, end int64)) {
	size := int64(e.spec.Size)
	if e.spec.Type == Tumbling {
		s := floorDiv(t, size) * size
		f(s, s+size)
		return
	}
	slide := int64(e.spec.Slide)
	last := floorDiv(t, slide) * slide
	first := last
	for first-slide > t-size {
		first -= slide
	}
	for s := first; s <= last; s += slide {
		f(s, s+size)
	}
}

// window returns the open window (key, start), creating it, and evicting
// the oldest window first when max_open is reached.
func (e *Engine[M]) window(key string, keyJSON []byte, start, end int64, out *[]Result[M]) *Window[M] {
	for _, w := range e.byKey[key] {
		if w.Start == start {
			return w
		}
	}
	return e.create(key, keyJSON, start, end, out)
}

func (e *Engine[M]) create(key string, keyJSON []byte, start, end int64, out *[]Result[M]) *Window[M] {
	if e.spec.MaxOpen > 0 && len(e.heap) >= e.spec.MaxOpen {
		*out = append(*out, e.close(e.heap[0], ReasonEvicted, true))
	}
	w := &Window[M]{Key: key, KeyJSON: keyJSON, Start: start, End: end, Accs: make([]Acc, len(e.spec.Aggs))}
	e.byKey[key] = append(e.byKey[key], w)
	e.heap.push(w)
	return w
}

// raise moves the watermark up to w (never down) and closes what it passed.
func (e *Engine[M]) raise(w int64, reason Reason, out *[]Result[M]) {
	if w <= e.w {
		return
	}
	e.w = w
	lateness := int64(e.spec.AllowedLateness)
	for len(e.heap) > 0 && e.heap[0].End+lateness <= e.w {
		*out = append(*out, e.close(e.heap[0], reason, true))
	}
}

// close removes w and returns its result.
func (e *Engine[M]) close(w *Window[M], reason Reason, final bool) Result[M] {
	e.remove(w)
	r := e.result(w, reason, final)
	r.Members = w.members
	w.members = nil
	return r
}

// remove takes w out of the heap and its key's list.
func (e *Engine[M]) remove(w *Window[M]) {
	e.heap.remove(w)
	ws := e.byKey[w.Key]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(e.byKey, w.Key)
	} else {
		e.byKey[w.Key] = ws
	}
}

func (e *Engine[M]) result(w *Window[M], reason Reason, final bool) Result[M] {
	vals := make([]any, len(e.spec.Aggs))
	for i, a := range e.spec.Aggs {
		vals[i] = w.Accs[i].value(&a)
	}
	return Result[M]{Key: w.Key, KeyJSON: w.KeyJSON, Start: w.Start, End: w.End, Reason: reason, Final: final, Values: vals}
}

// AdvanceClock moves the watermark with the clock when elapsed has passed
// since the last event: to the largest event time plus elapsed, minus
// max_out_of_order. Windows it passes close with reason: ReasonIdle after
// idle_timeout on event time; ReasonWatermark on processing time, where
// the clock is the event time.
func (e *Engine[M]) AdvanceClock(elapsed time.Duration, reason Reason) []Result[M] {
	if !e.seen {
		return nil
	}
	var out []Result[M]
	e.raise(satSub(satAdd(e.maxEvent, int64(elapsed)), int64(e.spec.MaxOutOfOrder)), reason, &out)
	return out
}

// NextClose returns how long after the last event AdvanceClock closes the
// next window, and false when no window is open.
func (e *Engine[M]) NextClose() (time.Duration, bool) {
	if len(e.heap) == 0 || !e.seen {
		return 0, false
	}
	due := e.heap[0].End + int64(e.spec.AllowedLateness) + int64(e.spec.MaxOutOfOrder) - e.maxEvent
	return time.Duration(max(due, 0)), true
}

// Early returns a non-final result for every window changed since the last
// call, in close order; members stay in the windows.
func (e *Engine[M]) Early() []Result[M] {
	var out []Result[M]
	for _, w := range e.heap.sorted() {
		if w.dirty {
			w.dirty = false
			out = append(out, e.result(w, ReasonWatermark, false))
		}
	}
	return out
}

// Flush closes every open window in close order with reason: final for
// end of input, partial ("final": false) for shutdown.
func (e *Engine[M]) Flush(reason Reason) []Result[M] {
	var out []Result[M]
	for len(e.heap) > 0 {
		out = append(out, e.close(e.heap[0], reason, reason != ReasonShutdown))
	}
	return out
}
