// Package window provides an exact sliding-window rate limiter.
package window

import (
	"fmt"
	"sync"
	"time"
)

// A Limiter admits at most limit events in any interval of length window.
//
// Unlike a fixed-window or two-bucket counter, the bound is exact: the
// Limiter keeps the times of the last limit admissions (a sliding log in a
// ring buffer), so no interval [t, t+window) ever holds more than limit
// admitted events, and an event is rejected only when limit admissions
// already lie in (now-window, now]. Memory is O(limit) and grows only as
// events are admitted.
//
// A Limiter owns no goroutines and never reads the clock: every method takes
// the current time explicitly. Times passed to it should be non-decreasing;
// a time before the most recent admission is treated as that admission's
// time, so a clock that steps backwards can delay events but never admits
// more than limit per window.
//
// The zero value is not usable; create Limiters with New. A Limiter is safe
// for concurrent use by multiple goroutines.
type Limiter struct {
	limit  int
	window time.Duration

	mu sync.Mutex
	// times holds admission times in ring order; it grows to limit entries
	// and then head indexes the oldest of them.
	times []time.Time
	head  int

	// undo restores the state before the latest Reserve, for Cancel; nil
	// once anything else was recorded.
	undo *undo
}

// undo is what Reserve overwrote: the ring's length and head, and the entry
// at the slot it wrote.
type undo struct {
	at        time.Time
	n, head   int
	overwrote time.Time
}

// New returns a Limiter that admits at most limit events in any interval of
// length window. It panics if limit < 1 or window <= 0; callers building a
// Limiter from configuration should validate those values first.
func New(limit int, window time.Duration) *Limiter {
	if limit < 1 {
		panic(fmt.Sprintf("window: New: limit %d < 1", limit))
	}
	if window <= 0 {
		panic(fmt.Sprintf("window: New: window %v <= 0", window))
	}
	return &Limiter{limit: limit, window: window}
}

// Limit returns the maximum number of events admitted per window.
func (l *Limiter) Limit() int { return l.limit }

// Window returns the length of the sliding window.
func (l *Limiter) Window() time.Duration { return l.window }

// Allow reports whether an event at now may be admitted, and if so records
// it. A false result records nothing, so rejected events do not count
// against the limit.
func (l *Limiter) Allow(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now = l.clamp(now)
	l.undo = nil
	if len(l.times) < l.limit {
		l.times = append(l.times, now)
		return true
	}
	if now.Sub(l.times[l.head]) < l.window {
		return false
	}
	l.times[l.head] = now
	l.head++
	if l.head == l.limit {
		l.head = 0
	}
	return true
}

// NextAllowed returns the earliest time t >= now at which Allow(t) would
// return true, assuming nothing else is admitted first. It returns now
// itself when Allow(now) would succeed. It records nothing; a caller that
// waits should call Allow again at the returned time, since other callers
// may have been admitted meanwhile.
func (l *Limiter) NextAllowed(now time.Time) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.times) < l.limit {
		return now
	}
	next := l.times[l.head].Add(l.window)
	if !l.clamp(now).Before(next) {
		return now
	}
	return next
}

// clamp returns now, or the most recent admission time if now is earlier.
// l.mu must be held.
func (l *Limiter) clamp(now time.Time) time.Time {
	if len(l.times) == 0 {
		return now
	}
	if newest := l.newest(); now.Before(newest) {
		return newest
	}
	return now
}

// Reserve records an admission for an event arriving at v at the earliest
// time at or after v that keeps the limit, and returns that time: v itself
// if fewer than limit admissions lie in (v-window, v], else the time the
// oldest of the last limit admissions leaves the window. Unlike Allow it
// always records, possibly a time in the future; the caller waits until
// then. Recording the scheduled time rather than the moment the caller woke
// keeps the window's phase: a waiter that wakes late does not push back
// every later turn of its slot.
func (l *Limiter) Reserve(v time.Time) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	at := l.clamp(v)
	u := &undo{n: len(l.times), head: l.head}
	if len(l.times) < l.limit {
		l.times = append(l.times, at)
	} else {
		if next := l.times[l.head].Add(l.window); next.After(at) {
			at = next
		}
		u.overwrote = l.times[l.head]
		l.times[l.head] = at
		l.head++
		if l.head == l.limit {
			l.head = 0
		}
	}
	u.at = at
	l.undo = u
	return at
}

// Cancel undoes the latest Reserve if it returned at and nothing was
// recorded since, and reports whether it did.
func (l *Limiter) Cancel(at time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	u := l.undo
	if u == nil || !u.at.Equal(at) {
		return false
	}
	if u.n < len(l.times) {
		l.times = l.times[:u.n]
	} else {
		l.times[u.head] = u.overwrote
	}
	l.head, l.undo = u.head, nil
	return true
}

// FullAt returns the time the newest admission leaves the window: from then
// on the Limiter admits exactly what a new one would. It is the zero Time
// when nothing was admitted.
func (l *Limiter) FullAt() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.times) == 0 {
		return time.Time{}
	}
	return l.newest().Add(l.window)
}

// Clone returns an independent Limiter holding the same admissions.
func (l *Limiter) Clone() *Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := &Limiter{limit: l.limit, window: l.window, head: l.head}
	c.times = append(make([]time.Time, 0, len(l.times)), l.times...)
	return c
}

// newest returns the most recent admission; l.times must not be empty and
// l.mu must be held.
func (l *Limiter) newest() time.Time {
	i := l.head - 1
	if i < 0 {
		i = len(l.times) - 1
	}
	return l.times[i]
}
