// Package pace admits events on a rate limit's absolute timeline, so that a
// late wake-up admits what has come due instead of losing the time.
//
// A [Schedule] (the GCRA [Bucket] here, or internal/window's sliding window)
// says when each event may pass; a [Pacer] feeds it the times events arrive
// and remembers how late the last waiter woke. Sleeping until each event's
// own turn, and starting the next turn from the wake-up, drifts by the
// wake-up's lateness every time (about 100 µs on a loaded machine: a
// 10,000/s bucket of burst 1 then runs at under 2,000/s). A Pacer instead
// counts the next event as arriving when it would have, had the wake-up been
// punctual, so the schedule keeps its phase the way time.Ticker does.
//
// The promise: every event passes at or after its scheduled time, and the
// scheduled times obey the limit exactly (for a bucket, at most
// burst + rate·t in any interval of length t). Real admissions can trail
// their schedule by at most [MaxLag], so an interval of real time can hold up
// to rate·lag more than the limit while a late wake-up catches up; from the
// start of a busy spell, n admissions by time t never exceed what the limit
// allows by t.
package pace

import (
	"sync"
	"time"
)

// MaxLag bounds the catch-up: how far real admissions may trail their
// schedule and still count as due. A wake-up later than this (a stopped
// process, a suspended machine) earns no credit: the timeline restarts from
// it instead of releasing everything that came due meanwhile.
const MaxLag = time.Second

// Schedule is a rate limit that places admissions on a timeline. Its methods
// are called by one [Pacer] at a time; implementations need not lock.
type Schedule interface {
	// Reserve records one admission for an event arriving at v and returns
	// its scheduled time: the earliest time at or after v the limit permits.
	Reserve(v time.Time) time.Time
	// Allow records an admission at now if the limit permits one at now,
	// and reports whether it did.
	Allow(now time.Time) bool
	// FullAt returns the time from which the limit holds its whole
	// allowance again: no admission recorded so far constrains one at or
	// after it, so from then on the schedule behaves as a new one would. It
	// is the zero Time when nothing was recorded.
	FullAt() time.Time
	// Cancel gives back a reservation scheduled at at (as returned by
	// Reserve), so later events are not held back by an event that never
	// passed, and reports whether it did. A schedule may give back only its
	// latest reservation.
	Cancel(at time.Time) bool
	// Clone returns an independent copy holding the same admissions.
	Clone() Schedule
}

// A Pacer admits events on a Schedule's timeline. It owns no goroutines and
// never reads the clock: callers pass the time and do the waiting, as with
// rate.Limiter's ReserveN. It is safe for concurrent use.
//
// Reserve (or Allow) is the one commit point: it records the admission in
// the schedule. Admitted only sets the credit the next event gets, and
// Cancel undoes a reservation whose event never passed.
//
// Block-mode use, one event:
//
//	at, limited := p.Reserve(now)
//	if at.After(now) {
//		sleep until at (on ctx: p.Cancel(at) and give up)
//		p.Admitted(at, clock.Now())
//	}
type Pacer struct {
	mu   sync.Mutex
	s    Schedule
	lag  time.Duration // how far the latest admission trailed its schedule
	last time.Time     // the latest arrival given to s, so arrivals never go back
}

// New returns a Pacer over s. The Pacer owns s from then on.
func New(s Schedule) *Pacer { return &Pacer{s: s} }

// Reserve schedules an event that arrives at now and returns when it may
// pass. at <= now means at once (it is due, possibly a late waiter's
// successor catching up); otherwise the caller waits until at and then calls
// [Pacer.Admitted], or [Pacer.Cancel] if it gives up. limited reports
// whether the limit held the event back: it would have had to wait even on
// a punctual timeline.
//
// The event is taken to arrive lag earlier than now, where lag is how late
// the previous admission was: with a punctual wake-up it would have. That
// credit lapses once the schedule has been full for at least lag at the
// credited time: the consumer stayed away longer than the debt, so a
// punctual timeline would have had nothing left to catch up either. A
// shorter pause (a consumer's hiccup during the catch-up) keeps the credit.
func (p *Pacer) Reserve(now time.Time) (at time.Time, limited bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v := now.Add(-p.lag)
	if v.Before(p.last) {
		v = p.last
	}
	if full := p.s.FullAt(); !full.After(v) && v.Sub(full) >= p.lag {
		v, p.lag = now, 0
	}
	p.last = v
	at = p.s.Reserve(v)
	if !at.After(now) {
		p.lag = credit(now.Sub(at))
	}
	return at, at.After(v)
}

// Admitted records that the event scheduled at at passed at now, after
// waiting: how late now is becomes the next event's credit.
func (p *Pacer) Admitted(at, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lag = credit(now.Sub(at))
}

// credit returns how much of a lateness the next event is credited with.
func credit(late time.Duration) time.Duration {
	if late < 0 || late > MaxLag {
		return 0
	}
	return late
}

// Cancel gives back the reservation scheduled at at if no later one was
// made, and reports whether it did.
func (p *Pacer) Cancel(at time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.s.Cancel(at)
}

// Allow admits an event at now if the limit permits it at once, recording
// it, and reports whether it did. It is the drop-mode call: nothing waits,
// so there is no lateness to credit.
func (p *Pacer) Allow(now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.s.Allow(now)
}

// Full reports whether the schedule holds its whole allowance at now, so
// the Pacer could be replaced by a new one without changing what it admits.
func (p *Pacer) Full(now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.s.FullAt().After(now)
}

// Clone returns an independent Pacer with the same schedule and credit.
func (p *Pacer) Clone() *Pacer {
	p.mu.Lock()
	defer p.mu.Unlock()
	return &Pacer{s: p.s.Clone(), lag: p.lag, last: p.last}
}
