package resilience

import "time"

// rateWindow counts calls and failures in ten buckets spanning a window.
type rateWindow struct {
	width   time.Duration
	buckets [10]bucket
}

type bucket struct {
	start           time.Time
	calls, failures int
}

func (w *rateWindow) init(window time.Duration) { w.width = max(window/10, 1) }

func (w *rateWindow) reset() { w.buckets = [10]bucket{} }

func (w *rateWindow) add(now time.Time, failure bool) {
	start := now.Truncate(w.width)
	b := &w.buckets[((start.UnixNano()/int64(w.width))%10+10)%10]
	if !b.start.Equal(start) {
		b.start, b.calls, b.failures = start, 0, 0
	}
	b.calls++
	if failure {
		b.failures++
	}
}

func (w *rateWindow) sum(now time.Time) (calls, failures int) {
	oldest := now.Truncate(w.width).Add(-9 * w.width)
	for _, b := range w.buckets {
		if !b.start.Before(oldest) && !b.start.After(now) {
			calls += b.calls
			failures += b.failures
		}
	}
	return calls, failures
}
