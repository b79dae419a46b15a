package pipeline

import (
	"maps"
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// Role is what a node does in the graph.
type Role uint8

const (
	RoleSource Role = iota
	RoleStage
	RoleSink
	RoleDeadLetter
)

func (r Role) String() string {
	switch r {
	case RoleSource:
		return "source"
	case RoleStage:
		return "stage"
	case RoleSink:
		return "sink"
	case RoleDeadLetter:
		return "dead_letter"
	}
	return "unknown"
}

// counters are one node's live statistics; all fields are safe for
// concurrent use.
type counters struct {
	in, out, failed, dropped, deadLettered, nacked, acked atomic.Int64
	latency                                               histogram
	// nackReasons counts, for a source, nacked source messages by the
	// dead-letter reason of their error.
	nackReasons reasonCounts
}

// reasonCounts counts events by reason; the zero value is ready and safe
// for concurrent use.
type reasonCounts struct {
	mu sync.Mutex
	m  map[string]int64
}

func (r *reasonCounts) add(reason string) {
	r.mu.Lock()
	if r.m == nil {
		r.m = map[string]int64{}
	}
	r.m[reason]++
	r.mu.Unlock()
}

func (r *reasonCounts) get(reason string) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[reason]
}

// snapshot returns a copy of the counts, nil when there are none.
func (r *reasonCounts) snapshot() map[string]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.m) == 0 {
		return nil
	}
	return maps.Clone(r.m)
}

// NodeStats is a snapshot of one node's counters.
type NodeStats struct {
	Name string
	Kind string
	Role Role
	// In counts messages received; for a source, messages produced.
	In int64
	// Out counts messages sent on (stages) or delivered (sinks).
	Out          int64
	Failed       int64
	Dropped      int64
	DeadLettered int64
	// Nacked counts messages nacked here; for a source, source messages
	// whose acknowledgement reported an error.
	Nacked int64
	// Acked counts, for a source, source messages acknowledged as delivered.
	Acked int64
	// NackReasons counts, for a source, nacked source messages by the
	// dead-letter reason of their error (see [Reason]); nil when none.
	NackReasons map[string]int64
	// Latency of Process or Write calls; zero for sources and custom stages.
	Latency LatencyStats
	// Queued is the number of messages waiting in the node's input buffer.
	Queued int
	// Buffer is the capacity of the node's input buffer.
	Buffer int
	// Figures are the node's own figures, if it is a [Reporter].
	Figures []Figure
}

// LatencyStats summarises a latency histogram. Percentiles are bucket upper
// bounds, accurate to within 19%.
//
// Latency is sampled: a node times each of its first [latencyExact] calls,
// then one call in [latencyEvery], and counts each later sample for
// latencyEvery calls, so Count, Mean, the percentiles and the buckets
// estimate all calls (Count within latencyEvery of the number of calls),
// while Min and Max are those of the timed calls. Reading the clock twice
// per call per node cost about 6% of the CPU of a short pipeline.
type LatencyStats struct {
	Count          int64
	Min, Max, Mean time.Duration
	P50, P90, P99  time.Duration
	// Buckets are the histogram's non-empty buckets in increasing order,
	// for exporters that rebucket them (e.g. into Prometheus histograms).
	Buckets []LatencyBucket
}

// LatencyBucket counts the observations in (previous bucket's Le, Le].
type LatencyBucket struct {
	Le    time.Duration
	Count int64
}

// histogram is a lock-free log-linear latency histogram: 4 buckets per power
// of two of nanoseconds.
type histogram struct {
	// calls counts the calls offered by sample.
	calls      atomic.Int64
	count, sum atomic.Int64
	min, max   atomic.Int64
	buckets    [256]atomic.Int64
}

func bucketOf(ns int64) int {
	if ns < 4 {
		return int(max(ns, 0))
	}
	u := uint64(ns)
	e := bits.Len64(u) - 1 // u in [2^e, 2^(e+1))
	sub := int(u>>(uint(e)-2)) & 3
	return e*4 + sub
}

func bucketUpper(i int) int64 {
	if i < 4 {
		return int64(i)
	}
	e, sub := i/4, i%4
	return (int64(1) << e) + int64(sub+1)*(int64(1)<<(e-2)) - 1
}

// Latency sampling (see [LatencyStats]): every call is timed up to
// latencyExact calls, then one in latencyEvery.
const (
	latencyExact = 1024
	latencyEvery = 16
)

// sample counts a call and returns the weight to record it with, or 0 if
// the call is not to be timed.
func (h *histogram) sample() int64 {
	c := h.calls.Add(1)
	switch {
	case c <= latencyExact:
		return 1
	case c%latencyEvery == 0:
		return latencyEvery
	}
	return 0
}

// record adds an observation of d standing for w calls.
func (h *histogram) record(d time.Duration, w int64) {
	ns := int64(d)
	if h.count.Add(w) == w {
		h.min.Store(ns)
	}
	h.sum.Add(ns * w)
	for {
		cur := h.min.Load()
		if ns >= cur || h.min.CompareAndSwap(cur, ns) {
			break
		}
	}
	for {
		cur := h.max.Load()
		if ns <= cur || h.max.CompareAndSwap(cur, ns) {
			break
		}
	}
	h.buckets[bucketOf(ns)].Add(w)
}

// mean returns the mean of the observations so far, 0 if none.
func (h *histogram) mean() time.Duration {
	n := h.count.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / n)
}

func (h *histogram) snapshot() LatencyStats {
	n := h.count.Load()
	if n == 0 {
		return LatencyStats{}
	}
	s := LatencyStats{
		Count: n,
		Min:   time.Duration(h.min.Load()),
		Max:   time.Duration(h.max.Load()),
		Mean:  time.Duration(h.sum.Load() / n),
	}
	var counts [256]int64
	total := int64(0)
	for i := range counts {
		counts[i] = h.buckets[i].Load()
		total += counts[i]
		if counts[i] > 0 {
			s.Buckets = append(s.Buckets, LatencyBucket{Le: time.Duration(bucketUpper(i)), Count: counts[i]})
		}
	}
	q := func(p float64) time.Duration {
		rank := int64(math.Ceil(p * float64(total)))
		acc := int64(0)
		for i, c := range counts {
			acc += c
			if acc >= rank && c > 0 {
				return min(time.Duration(bucketUpper(i)), s.Max)
			}
		}
		return s.Max
	}
	s.P50, s.P90, s.P99 = q(0.50), q(0.90), q(0.99)
	return s
}
