package windowing

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestKeyedTumblingMatchesAnIndependentReference sends thousands of
// out-of-order events with stragglers through a keyed tumbling window and
// through a reference written here from the rules alone (no engine code),
// and compares the exact windows, their order and members, and the exact
// set of late events.
func TestKeyedTumblingMatchesAnIndependentReference(t *testing.T) {
	const (
		n        = 20_000
		keys     = 37
		size     = 10 * s
		ooo      = 3 * s
		lateness = 2 * s
	)
	rng := rand.New(rand.NewPCG(18, 2026))
	type event struct {
		id  int
		key string
		t   int64
	}
	events := make([]event, n)
	clock := int64(-50 * s) // crosses zero: negative times align too
	for i := range events {
		// Times on a 100ms grid, so events land exactly on window ends
		// and watermark boundaries.
		const tick = 100 * int64(time.Millisecond)
		clock += rng.Int64N(4) * tick
		t := clock - rng.Int64N(40)*tick // jitter around the watermark lag
		if rng.IntN(50) == 0 {
			t = clock - rng.Int64N(400)*tick // a straggler
		}
		events[i] = event{id: i, key: fmt.Sprintf("user-%d", rng.IntN(keys)), t: t}
	}

	// The reference.
	type wkey struct {
		key   string
		start int64
	}
	type refWindow struct {
		wkey
		members []int
		closeAt int // index of the event whose watermark closed it; n at the end
	}
	open := map[wkey]*refWindow{}
	var closed []*refWindow
	wantLate := map[int]bool{}
	maxT, seen := int64(0), false
	for i, ev := range events {
		start := ev.t / size * size
		if ev.t%size != 0 && ev.t < 0 {
			start -= size
		}
		wm := maxT - ooo
		if seen && start+size+lateness <= wm {
			wantLate[ev.id] = true
		} else {
			k := wkey{ev.key, start}
			if open[k] == nil {
				open[k] = &refWindow{wkey: k}
			}
			open[k].members = append(open[k].members, ev.id)
		}
		if !seen || ev.t > maxT {
			maxT, seen = ev.t, true
		}
		wm = maxT - ooo
		for k, w := range open {
			if k.start+size+lateness <= wm {
				w.closeAt = i
				closed = append(closed, w)
				delete(open, k)
			}
		}
	}
	for _, w := range open {
		w.closeAt = n
		closed = append(closed, w)
	}
	slices.SortFunc(closed, func(a, b *refWindow) int {
		return cmp.Or(cmp.Compare(a.closeAt, b.closeAt), cmp.Compare(a.start, b.start), cmp.Compare(a.key, b.key))
	})

	// The engine.
	e, err := New[int](Spec{Type: Tumbling, Size: time.Duration(size), MaxOutOfOrder: time.Duration(ooo),
		AllowedLateness: time.Duration(lateness), Aggs: []Agg{{Name: "n", Func: Count}}})
	if err != nil {
		t.Fatal(err)
	}
	var got []Result[int]
	var gotAt []int // index of the event after which each result came out
	gotLate := map[int]bool{}
	for i, ev := range events {
		a, out, err := e.Add(Event[int]{Key: ev.key, Time: ev.t, Values: []any{nil}, Member: ev.id})
		if err != nil {
			t.Fatal(err)
		}
		if a.Late > 0 {
			gotLate[ev.id] = true
		}
		got = append(got, out...)
		for range out {
			gotAt = append(gotAt, i)
		}
	}
	got = append(got, e.Flush(ReasonEndOfInput)...)
	for len(gotAt) < len(got) {
		gotAt = append(gotAt, n)
	}

	if len(wantLate) < 20 || len(wantLate) > n/10 {
		t.Fatalf("the input has %d late events; adjust it to have some but not most", len(wantLate))
	}
	for id := range wantLate {
		if !gotLate[id] {
			t.Errorf("event %d (%+v) is late in the reference, not in the engine", id, events[id])
		}
	}
	for id := range gotLate {
		if !wantLate[id] {
			t.Errorf("event %d (%+v) is late in the engine, not in the reference", id, events[id])
		}
	}
	if len(got) != len(closed) {
		t.Fatalf("engine emitted %d windows, reference %d", len(got), len(closed))
	}
	for i, w := range closed {
		g := got[i]
		if g.Key != w.key || gotAt[i] != w.closeAt || g.Start != w.start || g.End != w.start+size || !slices.Equal(g.Members, w.members) ||
			g.Values[0] != int64(len(w.members)) {
			t.Fatalf("window %d: engine %s [%d,%d) %d members %v after event %d, reference %s [%d,...) %v after event %d",
				i, g.Key, g.Start, g.End, g.Values[0], g.Members, gotAt[i], w.key, w.start, w.members, w.closeAt)
		}
	}
	t.Logf("%d events, %d windows, %d late", n, len(closed), len(wantLate))
}
