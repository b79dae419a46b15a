package pace

import (
	"fmt"
	"math"
	"time"
)

// A Bucket is a token bucket kept as GCRA keeps it: one theoretical arrival
// time (TAT) that advances by 1/rate per admitted event. An event arriving
// at v is scheduled at max(v, TAT − (burst−1)/rate); TAT becomes
// max(TAT, v) + 1/rate. Over any interval of length t, at most
// burst + rate·t scheduled times fall; after a quiet spell of burst/rate,
// burst events pass at once.
//
// golang.org/x/time/rate.Limiter keeps the same bucket as a float token
// count, but it cannot be copied (a key's limiter moving to a shared one
// needs that) and has no notion of "full"; TAT is one number and makes both
// trivial.
//
// TAT is kept as origin + n·interval, computed afresh from n rather than
// summed, so no rounding accumulates: after a billion events at 3/s the
// schedule is still exact to the nanosecond. Times round up, so an event is
// never scheduled early.
//
// The zero value is not usable; create Buckets with NewBucket or
// NewBucketEvery. A Bucket is not safe for concurrent use; a Pacer
// serialises it.
type Bucket struct {
	interval float64 // nanoseconds per event
	tau      time.Duration
	origin   time.Time
	n        int64 // events scheduled since origin: TAT = origin + n·interval
}

var _ Schedule = (*Bucket)(nil)

// NewBucket returns a Bucket admitting rate events per second with bursts
// of up to burst. It panics unless rate > 0 and burst >= 1; callers building
// one from configuration validate those first.
func NewBucket(rate float64, burst int) *Bucket {
	if !(rate > 0) || burst < 1 {
		panic(fmt.Sprintf("pace: NewBucket(%v, %d): need rate > 0 and burst >= 1", rate, burst))
	}
	iv := 1e9 / rate
	return &Bucket{interval: iv, tau: duration(float64(burst-1) * iv)}
}

// NewBucketEvery returns a Bucket admitting one event per interval, with
// bursts of up to burst. It panics unless interval > 0 and burst >= 1.
func NewBucketEvery(interval time.Duration, burst int) *Bucket {
	if interval <= 0 || burst < 1 {
		panic(fmt.Sprintf("pace: NewBucketEvery(%v, %d): need interval > 0 and burst >= 1", interval, burst))
	}
	iv := float64(interval)
	return &Bucket{interval: iv, tau: duration(float64(burst-1) * iv)}
}

// duration converts nanoseconds to a Duration, rounding up and saturating
// at about 146 years (a rate of 1e-12/s still works).
func duration(ns float64) time.Duration {
	const most = math.MaxInt64 / 2
	if ns >= most {
		return most
	}
	return time.Duration(math.Ceil(ns))
}

func (b *Bucket) tat() time.Time { return b.origin.Add(duration(float64(b.n) * b.interval)) }

func (b *Bucket) Reserve(v time.Time) time.Time {
	tat := b.tat()
	if b.origin.IsZero() || v.After(tat) {
		b.origin, b.n, tat = v, 0, v
	}
	b.n++
	if earliest := tat.Add(-b.tau); earliest.After(v) {
		return earliest
	}
	return v
}

func (b *Bucket) Allow(now time.Time) bool {
	if !b.origin.IsZero() && b.tat().Add(-b.tau).After(now) {
		return false
	}
	b.Reserve(now)
	return true
}

func (b *Bucket) FullAt() time.Time {
	if b.origin.IsZero() {
		return time.Time{}
	}
	return b.tat()
}

// Cancel gives back the latest reservation. A Bucket cannot tell which
// reservation at belongs to, nor need it: every reservation moves TAT by the
// same interval, so giving one back is the same whichever it was.
func (b *Bucket) Cancel(time.Time) bool {
	if b.n == 0 {
		return false
	}
	b.n--
	return true
}

func (b *Bucket) Clone() Schedule {
	c := *b
	return &c
}
