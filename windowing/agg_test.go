package windowing

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"testing"
	"time"
)

// aggregate feeds values (one per event, at times 0, 1ns, ...) into one
// window with agg and returns its output.
func aggregate(t *testing.T, agg Agg, vals ...any) any {
	t.Helper()
	return aggregateAt(t, agg, nil, vals...)
}

func aggregateAt(t *testing.T, agg Agg, times []int64, vals ...any) any {
	t.Helper()
	e, err := New[int](Spec{Type: Tumbling, Size: time.Hour, Aggs: []Agg{agg}})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vals {
		at := int64(i)
		if times != nil {
			at = times[i]
		}
		if _, _, err := e.Add(Event[int]{Time: at, Values: []any{v}}); err != nil {
			t.Fatalf("Add(%v) = %v", v, err)
		}
	}
	out := e.Flush(ReasonEndOfInput)
	if len(out) != 1 {
		t.Fatalf("%d windows, want 1", len(out))
	}
	return out[0].Values[0]
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestAggregates(t *testing.T) {
	big := int64(math.MaxInt64 - 1)
	for _, c := range []struct {
		name string
		agg  Agg
		vals []any
		want string
	}{
		{"count counts members", Agg{Func: Count}, []any{nil, nil, nil}, "3"},
		{"sum of ints is an int", Agg{Func: Sum}, []any{int64(2), int64(3)}, "5"},
		{"sum with one double is a double", Agg{Func: Sum}, []any{int64(2), 0.5}, "2.5"},
		{"sum that would overflow becomes a double", Agg{Func: Sum}, []any{big, int64(10)}, "9223372036854776000"},
		{"sum keeps ints beyond 2^53 exact", Agg{Func: Sum}, []any{int64(1 << 60), int64(1)}, "1152921504606846977"},
		{"avg is a double", Agg{Func: Avg}, []any{int64(1), int64(2)}, "1.5"},
		{"min mixes ints and doubles", Agg{Func: Min}, []any{int64(3), 2.5, int64(4)}, "2.5"},
		{"max of ints is an int", Agg{Func: Max}, []any{int64(3), 2.5, int64(4)}, "4"},
		{"min of strings", Agg{Func: Min}, []any{"b", "a", "c"}, `"a"`},
		{"numbers order before strings", Agg{Func: Max}, []any{"a", int64(9)}, `"a"`},
		{"first keeps the first arrival", Agg{Func: First}, []any{map[string]any{"x": int64(1)}, "b"}, `{"x":1}`},
		{"last keeps the last arrival", Agg{Func: Last}, []any{"a", "b", "c"}, `"c"`},
		{"count_distinct is exact while small", Agg{Func: CountDistinct}, []any{"a", "b", "a", int64(1), "1"}, "4"},
		{"quantile is exact while small", Agg{Func: Quantile, Q: 0.5}, []any{int64(5), int64(1), int64(3), int64(2)}, "2"},
		{"quantile 1 is the max", Agg{Func: Quantile, Q: 1}, []any{int64(5), int64(1), 7.5}, "7.5"},
		{"quantile 0 is the min", Agg{Func: Quantile, Q: 0}, []any{int64(5), int64(-1)}, "-1"},
		{"collect keeps max_collect items", Agg{Func: Collect, MaxCollect: 2}, []any{"a", int64(1), "c"}, `["a",1]`},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.agg.Name = "x"
			if got := js(aggregate(t, c.agg, c.vals...)); got != c.want {
				t.Errorf("%s(%v) = %s, want %s", c.agg.Func, c.vals, got, c.want)
			}
		})
	}
}

func TestFirstAndLastGoByEventTimeThenArrival(t *testing.T) {
	times := []int64{5, 2, 9, 2, 9}
	vals := []any{"a", "b", "c", "d", "e"}
	if got := aggregateAt(t, Agg{Name: "f", Func: First}, times, vals...); js(got) != `"b"` {
		t.Errorf("first = %s, want \"b\" (earliest time, first arrival)", js(got))
	}
	if got := aggregateAt(t, Agg{Name: "l", Func: Last}, times, vals...); js(got) != `"e"` {
		t.Errorf("last = %s, want \"e\" (latest time, last arrival)", js(got))
	}
}

func TestAValueOfTheWrongTypeIsRefusedAndChangesNothing(t *testing.T) {
	e, err := New[int](Spec{Type: Tumbling, Size: time.Second, Aggs: []Agg{
		{Name: "n", Func: Count}, {Name: "s", Func: Sum}, {Name: "m", Func: Min}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, vals := range [][]any{{nil, "x", int64(1)}, {nil, int64(1), true}, {nil, int64(1), nil}, {nil, math.NaN(), int64(1)}} {
		if _, _, err := e.Add(Event[int]{Time: 5, Values: vals}); err == nil {
			t.Errorf("Add(%v) = nil error", vals)
		}
	}
	if _, _, err := e.Add(Event[int]{Time: MaxTime + 1, Values: []any{nil, int64(1), int64(1)}}); err == nil {
		t.Error("Add(time beyond MaxTime) = nil error")
	}
	if e.Open() != 0 || e.Watermark() != NoWatermark {
		t.Errorf("refused events changed the engine: %d open, watermark %d", e.Open(), e.Watermark())
	}
}

func TestCountDistinctBeyondTheExactBoundIsWithinThreeStandardErrors(t *testing.T) {
	const n = 200_000
	vals := make([]any, 0, n+n/2)
	for i := range n {
		vals = append(vals, fmt.Sprint("user-", i))
	}
	for i := range n / 2 { // repeats change nothing
		vals = append(vals, fmt.Sprint("user-", i*2))
	}
	got := aggregate(t, Agg{Name: "d", Func: CountDistinct}, vals...).(int64)
	if rel := math.Abs(float64(got)-n) / n; rel > 3*0.0081 {
		t.Errorf("count_distinct of %d values = %d, relative error %.4f > 3 x 0.81%%", n, got, rel)
	}
}

func TestQuantileSketchIsWithinOnePercentOfTheExactValue(t *testing.T) {
	const n = 50_000
	vals := make([]any, n)
	exact := make([]float64, n)
	x := uint64(1)
	for i := range n {
		x = x*6364136223846793005 + 1442695040888963407
		v := float64(x>>40)/1000 - 2000 // negatives, zero-crossing, positives
		if i%100 == 0 {
			v = 0
		}
		vals[i], exact[i] = v, v
	}
	sort.Float64s(exact)
	for _, q := range []float64{0, 0.01, 0.25, 0.5, 0.9, 0.99, 0.999, 1} {
		got := aggregate(t, Agg{Name: "p", Func: Quantile, Q: q}, vals...).(float64)
		want := exact[rank(q, n)-1]
		if math.Abs(got-want) > QuantileAccuracy*math.Abs(want)+1e-9 {
			t.Errorf("quantile(%v) = %v, exact %v: relative error over %v", q, got, want, QuantileAccuracy)
		}
	}
}

func TestSessionMergeCombinesAccumulators(t *testing.T) {
	spec := Spec{Type: Session, Gap: 10 * time.Second, MaxOutOfOrder: time.Minute, Aggs: []Agg{
		{Name: "n", Func: Count}, {Name: "sum", Func: Sum}, {Name: "max", Func: Max}, {Name: "first", Func: First},
		{Name: "last", Func: Last}, {Name: "d", Func: CountDistinct}, {Name: "p", Func: Quantile, Q: 1},
		{Name: "ids", Func: Collect, MaxCollect: 10},
	}}
	r := newRig(t, spec)
	r.add("u", 20*s, nil, int64(1), int64(7), "c", "c", "x", int64(3), "c")
	r.add("u", 0, nil, 0.5, int64(2), "a", "a", "y", int64(9), "a")
	r.add("u", 8*s, nil, int64(2), int64(1), "b", "b", "x", int64(1), "b") // [0,18)
	r.add("u", 14*s, nil, int64(4), int64(3), "d", "d", "z", int64(4), "d")
	// [14,24) bridges [0,18) and [20,30): collect keeps the earlier
	// session's items first.
	out := r.e.Flush(ReasonEndOfInput)
	if len(out) != 1 {
		t.Fatalf("%d sessions, want 1 merged session: %+v", len(out), out)
	}
	if got, want := js(out[0].Values), `[4,7.5,7,"a","c",3,9,["a","b","c","d"]]`; got != want {
		t.Errorf("merged values = %s, want %s", got, want)
	}
	if got := slices.Sorted(slices.Values(out[0].Members)); !slices.Equal(got, []int{1, 2, 3, 4}) {
		t.Errorf("merged members = %v", got)
	}
}
