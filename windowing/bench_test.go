package windowing

import (
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"
)

func benchSpec() Spec {
	return Spec{Type: Tumbling, Size: time.Minute, MaxOutOfOrder: 5 * time.Second, Aggs: []Agg{
		{Name: "n", Func: Count}, {Name: "total", Func: Sum}, {Name: "max", Func: Max}}}
}

// BenchmarkKeyedTumbling is the engine alone: 10k keys, one event every
// millisecond of event time, 1-minute windows, count + sum + max.
func BenchmarkKeyedTumbling(b *testing.B) {
	e, err := New[int](benchSpec())
	if err != nil {
		b.Fatal(err)
	}
	keys := make([]string, 10_000)
	for i := range keys {
		keys[i] = fmt.Sprintf(`"user-%d"`, i)
	}
	vals := []any{nil, int64(0), int64(0)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		vals[1], vals[2] = int64(i%100), int64(i%100)
		if _, _, err := e.Add(Event[int]{Key: keys[i%len(keys)], Time: int64(i) * int64(time.Millisecond), Values: vals, Member: i}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkStatePerOpenWindow opens 100k (key, window) pairs with count,
// sum and max, and reports the heap they take and their JSON state size.
func BenchmarkStatePerOpenWindow(b *testing.B) {
	const windows = 100_000
	for range b.N {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		e, _ := New[int](benchSpec())
		for i := range windows {
			e.Add(Event[int]{Key: fmt.Sprintf(`"user-%d"`, i), Time: int64(i), Values: []any{nil, int64(i), int64(i)}, Member: i})
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if e.Open() != windows {
			b.Fatalf("Open() = %d", e.Open())
		}
		raw, _ := json.Marshal(e.Snapshot())
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/windows, "heap-bytes/window")
		b.ReportMetric(float64(len(raw))/windows, "json-bytes/window")
		runtime.KeepAlive(e)
	}
}
