// Package backoff computes retry delays: capped exponential backoff with
// optional jitter and limits on attempts and elapsed time.
package backoff

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Jitter selects how much of a delay is randomized.
type Jitter int

const (
	// NoJitter uses the exponential delay d unchanged.
	NoJitter Jitter = iota
	// FullJitter waits uniformly in [0, d).
	FullJitter
	// EqualJitter waits d/2 plus uniformly in [0, d/2), that is in [d/2, d).
	EqualJitter
)

var jitterNames = [...]string{NoJitter: "none", FullJitter: "full", EqualJitter: "equal"}

// String returns "none", "full" or "equal", the names ParseJitter accepts.
func (j Jitter) String() string {
	if j >= 0 && int(j) < len(jitterNames) {
		return jitterNames[j]
	}
	return fmt.Sprintf("Jitter(%d)", int(j))
}

// ParseJitter returns the Jitter named "none", "full" or "equal".
func ParseJitter(s string) (Jitter, error) {
	for j, name := range jitterNames {
		if s == name {
			return Jitter(j), nil
		}
	}
	return 0, fmt.Errorf("backoff: unknown jitter %q (want none, full or equal)", s)
}

// A Policy describes when to retry a failed operation and how long to wait
// first. After n failed attempts the next wait is BaseDelay*Multiplier^(n-1),
// capped at MaxDelay, then jittered.
//
// The zero value retries forever with no delay. A Policy is a plain value,
// safe to copy and to use from multiple goroutines; it owns no goroutines and
// never reads the clock.
type Policy struct {
	// BaseDelay is the delay after the first failure, before jitter.
	BaseDelay time.Duration
	// MaxDelay caps the delay before jitter. 0 means no cap beyond the
	// largest Duration.
	MaxDelay time.Duration
	// Multiplier scales the delay after each further failure. 0 means 2;
	// otherwise it must be at least 1, and 1 gives a constant delay.
	Multiplier float64
	// Jitter randomizes each delay; the zero value is NoJitter.
	Jitter Jitter
	// MaxAttempts bounds the total number of attempts, the first included.
	// 0 means unlimited.
	MaxAttempts int
	// MaxElapsed bounds the time from the start of the first attempt to the
	// start of the last: no retry is scheduled whose start would fall after
	// it. 0 means unlimited.
	MaxElapsed time.Duration
}

// Validate reports every problem with p, joined, or nil if p is usable.
func (p Policy) Validate() error {
	var errs []error
	if p.BaseDelay < 0 {
		errs = append(errs, fmt.Errorf("backoff: BaseDelay %v is negative", p.BaseDelay))
	}
	if p.MaxDelay < 0 {
		errs = append(errs, fmt.Errorf("backoff: MaxDelay %v is negative", p.MaxDelay))
	} else if p.MaxDelay > 0 && p.MaxDelay < p.BaseDelay {
		errs = append(errs, fmt.Errorf("backoff: MaxDelay %v is less than BaseDelay %v", p.MaxDelay, p.BaseDelay))
	}
	if p.Multiplier != 0 && !(p.Multiplier >= 1 && !math.IsInf(p.Multiplier, 1)) {
		errs = append(errs, fmt.Errorf("backoff: Multiplier %v is not 0 (meaning 2) or a finite number >= 1", p.Multiplier))
	}
	if p.Jitter < NoJitter || p.Jitter > EqualJitter {
		errs = append(errs, fmt.Errorf("backoff: unknown %v", p.Jitter))
	}
	if p.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("backoff: MaxAttempts %d is negative", p.MaxAttempts))
	}
	if p.MaxElapsed < 0 {
		errs = append(errs, fmt.Errorf("backoff: MaxElapsed %v is negative", p.MaxElapsed))
	}
	return errors.Join(errs...)
}

// Delay returns the wait before attempt n+1 after n failed attempts; n < 1 is
// treated as 1. It ignores MaxAttempts and MaxElapsed (see Next). For a
// Policy that passes Validate the result is in [0, MaxDelay], or [0, the
// largest Duration] when MaxDelay is 0, for every n: it saturates rather than
// overflowing.
//
// rnd supplies jitter: each call must return a value in [0, 1), such as
// rand.Float64 or a seeded source's Float64 for reproducible delays. It is
// not called when Jitter is NoJitter; nil means math/rand/v2's Float64.
func (p Policy) Delay(n int, rnd func() float64) time.Duration {
	d := p.exponential(max(n, 1))
	switch p.Jitter {
	case FullJitter:
		return time.Duration(random(rnd) * float64(d))
	case EqualJitter:
		half := d / 2
		return half + time.Duration(random(rnd)*float64(d-half))
	}
	return d
}

// Next reports whether another attempt is allowed after attempts failed
// attempts, the first of which started elapsed ago, and if so the delay
// before it, as Delay(attempts, rnd). It returns ok false, and a zero delay,
// once attempts reaches MaxAttempts, or when elapsed+delay would exceed
// MaxElapsed: a retry that would start too late is not scheduled at all
// rather than shortened.
func (p Policy) Next(attempts int, elapsed time.Duration, rnd func() float64) (delay time.Duration, ok bool) {
	if p.MaxAttempts > 0 && attempts >= p.MaxAttempts {
		return 0, false
	}
	delay = p.Delay(attempts, rnd)
	elapsed = max(elapsed, 0)
	if p.MaxElapsed > 0 && (elapsed > p.MaxElapsed || delay > p.MaxElapsed-elapsed) {
		return 0, false
	}
	return delay, true
}

// exponential returns BaseDelay*Multiplier^(n-1) capped at MaxDelay.
func (p Policy) exponential(n int) time.Duration {
	limit := p.MaxDelay
	if limit <= 0 {
		limit = math.MaxInt64
	}
	if p.BaseDelay <= 0 {
		return 0
	}
	mult := p.Multiplier
	if mult == 0 {
		mult = 2
	}
	// Pow overflows to +Inf for large n; float64(limit) may round up to
	// 2^63, so d < float64(limit) guarantees d converts without overflow.
	d := float64(p.BaseDelay) * math.Pow(mult, float64(n-1))
	if !(d < float64(limit)) {
		return limit
	}
	return time.Duration(d)
}

// random returns rnd() confined to [0, 1).
func random(rnd func() float64) float64 {
	if rnd == nil {
		rnd = rand.Float64
	}
	r := rnd()
	if !(r >= 0) {
		return 0
	}
	return min(r, math.Nextafter(1, 0))
}
