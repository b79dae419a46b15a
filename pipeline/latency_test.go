package pipeline

import (
	"testing"
	"time"
)

// Given a node called many times, when its latency is sampled, then every
// call up to latencyExact is timed, later one in latencyEvery, and the
// weighted histogram still counts (and averages) all calls.
func TestLatencySamplingEstimatesAllCalls(t *testing.T) {
	var h histogram
	const calls = latencyExact + 100*latencyEvery + 3
	timed := 0
	for i := range calls {
		if w := h.sample(); w > 0 {
			timed++
			d := time.Microsecond
			if i%3 == 0 { // not aligned with the sampling period
				d = 3 * time.Microsecond
			}
			h.record(d, w)
		}
	}
	if want := latencyExact + 100; timed != want {
		t.Errorf("timed %d calls, want %d", timed, want)
	}
	s := h.snapshot()
	if s.Count < calls-latencyEvery || s.Count > calls {
		t.Errorf("Count = %d, want within %d of %d", s.Count, latencyEvery, calls)
	}
	var inBuckets int64
	for _, b := range s.Buckets {
		inBuckets += b.Count
	}
	if inBuckets != s.Count {
		t.Errorf("buckets hold %d, want Count %d", inBuckets, s.Count)
	}
	if s.Mean < 1550*time.Nanosecond || s.Mean > 1800*time.Nanosecond {
		t.Errorf("Mean = %v, want about 1.67µs", s.Mean)
	}
	if s.Min != time.Microsecond || s.Max != 3*time.Microsecond {
		t.Errorf("Min, Max = %v, %v, want 1µs, 3µs", s.Min, s.Max)
	}
}
