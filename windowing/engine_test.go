package windowing

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"
)

const s = int64(time.Second)

// rig drives an engine with int members (event ids) and records results.
type rig struct {
	t   *testing.T
	e   *Engine[int]
	id  int
	out []Result[int]
}

func newRig(t *testing.T, spec Spec) *rig {
	t.Helper()
	if spec.Aggs == nil {
		spec.Aggs = []Agg{{Name: "count", Func: Count}}
	}
	e, err := New[int](spec)
	if err != nil {
		t.Fatalf("New(%+v) = %v", spec, err)
	}
	return &rig{t: t, e: e}
}

// add sends an event for key at t (nanoseconds) with one value per
// aggregate (count takes nil) and returns what Add said.
func (r *rig) add(key string, t int64, vals ...any) Added {
	r.t.Helper()
	return r.addEv(Event[int]{Key: key, Time: t, Values: r.vals(vals)})
}

func (r *rig) vals(vals []any) []any {
	if len(vals) == 0 {
		vals = make([]any, len(r.e.spec.Aggs))
	}
	return vals
}

func (r *rig) addEv(ev Event[int]) Added {
	r.t.Helper()
	r.id++
	ev.Member = r.id
	a, out, err := r.e.Add(ev)
	if err != nil {
		r.t.Fatalf("Add(%s @%d) = %v", ev.Key, ev.Time, err)
	}
	r.out = append(r.out, out...)
	return a
}

// take returns the results so far as "key [start,end) reason members" lines
// (times in seconds) and forgets them.
func (r *rig) take() []string {
	var lines []string
	for _, x := range r.out {
		f := ""
		if !x.Final {
			f = " partial"
		}
		lines = append(lines, fmt.Sprintf("%s [%d,%d) %s %v%s", x.Key, x.Start/s, x.End/s, x.Reason, x.Members, f))
	}
	r.out = nil
	return lines
}

func (r *rig) expect(want ...string) {
	r.t.Helper()
	if got := r.take(); !slices.Equal(got, want) {
		r.t.Errorf("results =\n  %q\nwant\n  %q", got, want)
	}
}

func TestAnEventExactlyAtTheWindowEndClosesItAndLaterOnesForItAreLate(t *testing.T) {
	r := newRig(t, Spec{Type: Tumbling, Size: 10 * time.Second})
	r.add("a", 5*s)
	r.add("a", 10*s-1) // W = 10s-1ns: [0,10) stays open
	r.expect()
	if a := r.add("a", 3*s); a.Windows != 1 || a.Late != 0 {
		t.Errorf("event at 3s with W just below 10s: %+v, want added", a)
	}
	r.add("a", 10*s) // W = 10s = end: [0,10) closes
	r.expect("a [0,10) watermark [1 2 3]")
	if a := r.add("a", 10*s-1); a.Windows != 0 || a.Late != 1 {
		t.Errorf("event at 10s-1ns with W = 10s: %+v, want late", a)
	}
	r.add("a", 10*s) // same window [10,20), no close
	r.expect()
}

func TestAllowedLatenessKeepsAWindowOpenPastItsEnd(t *testing.T) {
	r := newRig(t, Spec{Type: Tumbling, Size: 10 * time.Second, AllowedLateness: 5 * time.Second})
	r.add("a", 1*s)
	r.add("a", 14*s) // W=14 < 10+5
	if a := r.add("a", 2*s); a.Late != 0 {
		t.Errorf("event within allowed lateness was late: %+v", a)
	}
	r.expect()
	r.add("a", 15*s) // W=15 = 10+5: closes
	r.expect("a [0,10) watermark [1 3]")
	if a := r.add("a", 9*s); a.Late != 1 {
		t.Errorf("event after end+lateness was not late: %+v", a)
	}
}

func TestMaxOutOfOrderLagsTheWatermark(t *testing.T) {
	r := newRig(t, Spec{Type: Tumbling, Size: 10 * time.Second, MaxOutOfOrder: 3 * time.Second})
	r.add("a", 2*s)
	r.add("a", 12*s) // W = 9
	if r.e.Watermark() != 9*s {
		t.Errorf("Watermark() = %d, want 9s", r.e.Watermark())
	}
	r.add("a", 8*s)
	r.expect()
	r.add("a", 13*s) // W = 10
	r.expect("a [0,10) watermark [1 3]")
	r.add("a", 11*s) // W stays 10: an earlier event never lowers it
	if r.e.Watermark() != 10*s {
		t.Errorf("Watermark() = %d after an older event, want 10s", r.e.Watermark())
	}
}

func TestResultsCloseInOrderOfEndThenKey(t *testing.T) {
	r := newRig(t, Spec{Type: Tumbling, Size: 10 * time.Second, MaxOutOfOrder: 10 * time.Second})
	r.add("b", 1*s)
	r.add("a", 15*s)
	r.add("a", 2*s)
	r.add("c", 12*s)
	r.add("z", 35*s)
	r.expect("a [0,10) watermark [3]", "b [0,10) watermark [1]", "a [10,20) watermark [2]", "c [10,20) watermark [4]")
}

func TestIdleAdvanceMovesTheWatermarkWithTheClock(t *testing.T) {
	r := newRig(t, Spec{Type: Tumbling, Size: 10 * time.Second, MaxOutOfOrder: 2 * time.Second})
	if got := r.e.AdvanceClock(time.Hour, ReasonIdle); got != nil {
		t.Errorf("AdvanceClock before any event = %v, want nothing", got)
	}
	r.add("a", 4*s)
	if d, ok := r.e.NextClose(); !ok || d != 8*time.Second {
		t.Errorf("NextClose() = %v, %v; want 8s (10 + 2 - 4), true", d, ok)
	}
	if got := r.e.AdvanceClock(8*time.Second-1, ReasonIdle); len(got) != 0 {
		t.Errorf("AdvanceClock(8s-1ns) closed %d windows, want 0", len(got))
	}
	got := r.e.AdvanceClock(8*time.Second, ReasonIdle)
	if len(got) != 1 || got[0].Reason != ReasonIdle || got[0].Start != 0 {
		t.Fatalf("AdvanceClock(8s) = %+v, want [0,10) closed by idle", got)
	}
	if a := r.add("a", 9*s); a.Late != 1 {
		t.Errorf("event behind the idle watermark: %+v, want late", a)
	}
	if _, ok := r.e.NextClose(); ok {
		t.Error("NextClose() with no open window = ok")
	}
}

func TestALateEventThatBridgesTwoSessionsMergesThem(t *testing.T) {
	r := newRig(t, Spec{Type: Session, Gap: 10 * time.Second, MaxOutOfOrder: 30 * time.Second})
	r.add("u", 0)    // [0,10)
	r.add("u", 15*s) // [15,25)
	r.add("v", 5*s)
	if r.e.Open() != 3 {
		t.Fatalf("Open() = %d, want 3", r.e.Open())
	}
	r.add("u", 8*s) // [8,18) overlaps both: [0,25)
	if r.e.Open() != 2 {
		t.Fatalf("Open() after bridge = %d, want 2", r.e.Open())
	}
	r.add("w", 56*s) // W = 26
	r.expect("v [5,15) watermark [3]", "u [0,25) watermark [1 2 4]")
}

func TestSessionsAreHalfOpenAnEventExactlyGapLaterStartsANewOne(t *testing.T) {
	r := newRig(t, Spec{Type: Session, Gap: 10 * time.Second})
	r.add("u", 0)
	r.add("u", 10*s) // [10,20), a new session; then W = 10 closes [0,10)
	r.add("u", 19*s)
	r.add("u", 29*s)
	r.expect("u [0,10) watermark [1]", "u [10,29) watermark [2 3]")
}

func TestEndsWhenClosesTheSession(t *testing.T) {
	r := newRig(t, Spec{Type: Session, Gap: 30 * time.Second})
	r.add("u", 0)
	r.addEv(Event[int]{Key: "u", Time: 5 * s, Values: []any{nil}, EndsSession: true})
	r.expect("u [0,35) session_end [1 2]")
	r.add("u", 6*s) // a new session
	if r.e.Open() != 1 {
		t.Errorf("Open() = %d, want a new session", r.e.Open())
	}
}

func TestSlidingWindowsHoldEveryEventTheyCover(t *testing.T) {
	r := newRig(t, Spec{Type: Sliding, Size: 10 * time.Second, Slide: 5 * time.Second, MaxOutOfOrder: 20 * time.Second})
	r.e.Dup = func(m int) int { return -m } // the second window's copy
	if a := r.add("a", 7*s); a.Windows != 2 {
		t.Errorf("event at 7s in %d windows, want 2 ([0,10) and [5,15))", a.Windows)
	}
	r.add("a", -3*s) // [-10,0) and [-5,5)
	r.add("a", 5*s)  // [0,10) and [5,15): 5s is not in [-5,5)
	r.add("a", 30*s) // W = 10
	r.expect("a [-10,0) watermark [2]", "a [-5,5) watermark [-2]", "a [0,10) watermark [1 3]")
	r.out = r.e.Flush(ReasonEndOfInput)
	r.expect("a [5,15) end_of_input [-1 -3]", "a [25,35) end_of_input [4]", "a [30,40) end_of_input [-4]")
}

func TestSlidingWindowsNeedASlideNoLongerThanTheirSize(t *testing.T) {
	for _, spec := range []Spec{
		{Type: Sliding, Size: 5 * time.Second, Slide: 10 * time.Second},
		{Type: Sliding, Size: time.Hour, Slide: time.Second},
		{Type: Tumbling},
		{Type: Session},
		{Type: Tumbling, Size: MaxDuration + 1},
		{Type: Tumbling, Size: time.Second, AllowedLateness: MaxDuration + 1},
	} {
		if _, err := New[int](spec); err == nil {
			t.Errorf("New(%+v) = nil error, want a refusal", spec)
		}
	}
}

func TestMaxOpenEvictsTheWindowThatWouldCloseFirst(t *testing.T) {
	r := newRig(t, Spec{Type: Tumbling, Size: 10 * time.Second, MaxOpen: 2, MaxOutOfOrder: time.Hour})
	r.add("b", 1*s)
	r.add("a", 12*s)
	r.add("a", 13*s)
	r.expect()
	r.add("c", 2*s) // third pair: [0,10) of b is evicted
	r.expect("b [0,10) evicted [1]")
	if r.e.Open() != 2 {
		t.Errorf("Open() = %d, want 2", r.e.Open())
	}
}

func TestEarlyResultsRepeatOnlyChangedWindowsAndKeepTheirMembers(t *testing.T) {
	r := newRig(t, Spec{Type: Tumbling, Size: 10 * time.Second})
	r.add("a", 1*s)
	r.add("b", 2*s)
	r.out = r.e.Early()
	r.expect("a [0,10) watermark [] partial", "b [0,10) watermark [] partial")
	r.add("b", 3*s)
	r.out = r.e.Early()
	r.expect("b [0,10) watermark [] partial")
	r.add("z", 10*s)
	r.expect("a [0,10) watermark [1]", "b [0,10) watermark [2 3]")
}

func TestFlushEmitsEveryOpenWindowFinalAtEndOfInputPartialAtShutdown(t *testing.T) {
	r := newRig(t, Spec{Type: Tumbling, Size: 10 * time.Second})
	r.add("a", 1*s)
	r.add("a", 11*s)
	r.take()
	r.add("b", 12*s)
	r.out = r.e.Flush(ReasonShutdown)
	r.expect("a [10,20) shutdown [2] partial", "b [10,20) shutdown [3] partial")
	r.add("c", 25*s)
	r.out = r.e.Flush(ReasonEndOfInput)
	r.expect("c [20,30) end_of_input [4]")
	if r.e.Open() != 0 {
		t.Errorf("Open() after Flush = %d", r.e.Open())
	}
}

func TestKeylessWindowsAndNegativeTimesAlignToTheEpoch(t *testing.T) {
	r := newRig(t, Spec{Type: Tumbling, Size: 10 * time.Second})
	r.add("", -1)
	r.add("", 0)
	r.expect(" [-10,0) watermark [1]")
}

func TestStateRoundTripsThroughJSONAndResumesIdentically(t *testing.T) {
	spec := Spec{Type: Session, Gap: 10 * time.Second, MaxOutOfOrder: 20 * time.Second, Aggs: []Agg{
		{Name: "n", Func: Count}, {Name: "sum", Func: Sum}, {Name: "min", Func: Min}, {Name: "first", Func: First},
		{Name: "d", Func: CountDistinct}, {Name: "p", Func: Quantile, Q: 0.5}, {Name: "ids", Func: Collect, MaxCollect: 3},
	}}
	a, b := newRig(t, spec), (*rig)(nil)
	ev := func(r *rig, i int) {
		k := fmt.Sprintf("k%d", i%7)
		r.add(k, int64(i*i%97)*s/3, nil, int64(i), float64(i)/2, fmt.Sprint("id", i), int64(i%5), int64(i), i)
	}
	for i := range 200 {
		ev(a, i)
	}
	a.take()
	raw, err := json.Marshal(a.e.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	var st State
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	e, err := Restore[int](spec, st)
	if err != nil {
		t.Fatalf("Restore = %v", err)
	}
	b = &rig{t: t, e: e, id: a.id}
	for i := 200; i < 400; i++ {
		ev(a, i)
		ev(b, i)
	}
	a.out = append(a.out, a.e.Flush(ReasonEndOfInput)...)
	b.out = append(b.out, b.e.Flush(ReasonEndOfInput)...)
	if len(a.out) == 0 || len(a.out) != len(b.out) {
		t.Fatalf("results: %d uninterrupted, %d restored", len(a.out), len(b.out))
	}
	for i := range a.out {
		x, y := a.out[i], b.out[i]
		jx, _ := json.Marshal(x.Values)
		jy, _ := json.Marshal(y.Values)
		if x.Key != y.Key || x.Start != y.Start || x.End != y.End || string(jx) != string(jy) {
			t.Errorf("result %d: uninterrupted %s [%d,%d) %s, restored %s [%d,%d) %s", i, x.Key, x.Start, x.End, jx, y.Key, y.Start, y.End, jy)
		}
	}
}

// TestTheWatermarkPictureInDocsWindowsMd replays the table in
// docs/windows.md.
func TestTheWatermarkPictureInDocsWindowsMd(t *testing.T) {
	r := newRig(t, Spec{Type: Tumbling, Size: 10 * time.Second, MaxOutOfOrder: 5 * time.Second})
	late := map[int]bool{}
	for i, at := range []int64{3, 12, 8, 24, 9, 31, 17} {
		if r.add("", at*s).Late > 0 {
			late[i+1] = true
		}
	}
	r.out = append(r.out, r.e.Flush(ReasonEndOfInput)...)
	r.expect(" [0,10) watermark [1 3]", " [10,20) watermark [2]", " [20,30) end_of_input [4]", " [30,40) end_of_input [6]")
	if len(late) != 2 || !late[5] || !late[7] {
		t.Errorf("late arrivals %v, want 5 (e@9) and 7 (g@17)", late)
	}
}
