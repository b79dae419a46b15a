package pace

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/internal/window"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// windowSchedule adapts a sliding window to Schedule, as the throttle does.
type windowSchedule struct{ *window.Limiter }

func (w windowSchedule) Clone() Schedule { return windowSchedule{w.Limiter.Clone()} }

// drive runs a backlogged consumer through p for n events on a virtual
// timeline: each event is offered delta after the previous one passed, and
// every wait wakes late by late(). It returns the admission times.
func drive(p *Pacer, n int, delta time.Duration, late func() time.Duration) []time.Time {
	now := t0
	out := make([]time.Time, 0, n)
	for range n {
		at, _ := p.Reserve(now)
		if at.After(now) {
			now = at.Add(late())
			p.Admitted(at, now)
		}
		out = append(out, now)
		now = now.Add(delta)
	}
	return out
}

func TestBucketSchedulesBurstAtOnceThenOnePerInterval(t *testing.T) {
	b := NewBucket(4, 3)
	var got []time.Duration
	for range 6 {
		got = append(got, b.Reserve(t0).Sub(t0))
	}
	ms := time.Millisecond
	want := []time.Duration{0, 0, 0, 250 * ms, 500 * ms, 750 * ms}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Reserve(t0) x6 = %v, want %v", got, want)
	}
	if got := b.FullAt().Sub(t0); got != 1500*ms {
		t.Errorf("FullAt() = t0+%v, want t0+1.5s: the last token is spent until then", got)
	}
}

func TestBucketNeverAccumulatesRounding(t *testing.T) {
	// 3/s is 333,333,333.3 ns: summing a rounded interval would drift by a
	// third of a nanosecond per event, 333 ms over a billion.
	b := NewBucket(3, 1)
	b.Reserve(t0)
	b.n = 3_000_000_000 // as if three billion events had been scheduled
	if got, want := b.tat().Sub(t0), 1_000_000_000*time.Second; got != want {
		t.Errorf("TAT after 3e9 events at 3/s = t0+%v, want t0+%v", got, want)
	}
}

func TestPacerKeepsTheRateWhateverHowLateWakeUpsAre(t *testing.T) {
	// Given a backlogged consumer whose waits wake up to 5 intervals late
	// (or up to 500 µs at high rates), the pacer admits n events in
	// (n-burst)/rate plus at most the last wake-up's lateness, and by no
	// time t more than burst + rate·t.
	for _, tc := range []struct {
		rate  float64
		burst int
		delta time.Duration // processing between events
	}{
		{1, 1, 0}, {10, 1, time.Millisecond}, {10_000, 1, time.Microsecond},
		{10_000, 100, time.Microsecond}, {1_000_000, 1, 100 * time.Nanosecond},
		{1_000_000, 1000, 300 * time.Nanosecond}, {3, 2, 0},
	} {
		t.Run(fmt.Sprintf("rate=%g/burst=%d", tc.rate, tc.burst), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(tc.rate), uint64(tc.burst)))
			iv := time.Duration(1e9 / tc.rate)
			maxLate := min(5*iv, 500*time.Microsecond)
			late := func() time.Duration { return time.Duration(r.Int64N(int64(maxLate) + 1)) }
			n := min(5*int(tc.rate), 200_000) + tc.burst
			at := drive(New(NewBucket(tc.rate, tc.burst)), n, tc.delta, late)
			for i, a := range at {
				if allowed := float64(tc.burst) + tc.rate*a.Sub(t0).Seconds(); float64(i+1) > allowed+1e-9 {
					t.Fatalf("event %d passed at t0+%v: %d by then, the bucket allows %.3f", i, a.Sub(t0), i+1, allowed)
				}
			}
			ideal := time.Duration(float64(n-tc.burst) / tc.rate * 1e9)
			if got := at[n-1].Sub(t0); got > ideal+maxLate+tc.delta {
				t.Errorf("%d events took %v, want at most %v + %v lateness (%.3f%% slow)",
					n, got, ideal, maxLate, 100*(got-ideal).Seconds()/ideal.Seconds())
			}
		})
	}
}

func TestPacerKeepsTheCreditThroughAHiccupShorterThanTheDebt(t *testing.T) {
	// At 1000/s, burst 1: a waiter scheduled at 1ms wakes at 11ms, so the
	// events due at 2..11ms are owed. The consumer takes three (2, 3, 4ms),
	// then pauses 2ms. A punctual timeline would have lost 1ms of that
	// pause (the event due at 5ms arriving at 6ms), so the events due at
	// 6..13ms pass at once at 13ms: eight, not one.
	p := New(NewBucket(1000, 1))
	ms := time.Millisecond
	p.Reserve(t0)
	at, _ := p.Reserve(t0)
	now := at.Add(10 * ms)
	p.Admitted(at, now)
	for range 3 {
		if at, _ := p.Reserve(now); at.After(now) {
			t.Fatalf("event due at t0+%v waits at t0+%v, want it passed at once", at.Sub(t0), now.Sub(t0))
		}
	}
	now = now.Add(2 * ms)
	n := 0
	for ; n < 100; n++ {
		if at, _ := p.Reserve(now); at.After(now) {
			break
		}
	}
	if n != 8 {
		t.Errorf("after a 2ms hiccup with 7ms owed, %d events passed at once, want 8", n)
	}
}

func TestPacerCreditLapsesOnceTheBucketIsFull(t *testing.T) {
	// Given a waiter that woke 10 intervals late, then a quiet spell longer
	// than the refill time, a burst of arrivals gets burst events at once,
	// not burst plus the lapsed credit.
	p := New(NewBucket(100, 2)) // 10 ms interval, refill 20 ms
	now := t0
	for range 3 {
		at, _ := p.Reserve(now)
		if at.After(now) {
			now = at.Add(100 * time.Millisecond)
			p.Admitted(at, now)
		}
	}
	now = now.Add(time.Second)
	var immediate int
	for range 10 {
		if at, _ := p.Reserve(now); !at.After(now) {
			immediate++
		}
	}
	if immediate != 2 {
		t.Errorf("after a quiet spell, %d of 10 simultaneous arrivals passed at once, want burst 2", immediate)
	}
}

func TestPacerCatchesUpToMaxLagAndRestartsBeyondIt(t *testing.T) {
	// At 1000/s, a wait that wakes 900 ms late is followed by the 900
	// events that came due meanwhile; one that wakes an hour late (a
	// suspended machine) restarts the timeline: only the burst passes.
	for _, tc := range []struct {
		late time.Duration
		want int
	}{{900 * time.Millisecond, 900}, {MaxLag, 1000}, {time.Hour, 1}} {
		p := New(NewBucket(1000, 1))
		p.Reserve(t0)
		at, _ := p.Reserve(t0)
		now := at.Add(tc.late)
		p.Admitted(at, now)
		n := 0
		for ; n < 10_000; n++ {
			if at, _ := p.Reserve(now); at.After(now) {
				break
			}
		}
		if n != tc.want {
			t.Errorf("after waking %v late, %d events passed at once, want %d", tc.late, n, tc.want)
		}
	}
}

func TestPacerOverASlidingWindowKeepsItsPhase(t *testing.T) {
	// Given limit 2 per 10 ms and waits that wake up to 3 ms late, the
	// scheduled times never put 3 in any 10 ms, and 1,000 events take
	// 499 windows plus at most the last wake-up's lateness.
	r := rand.New(rand.NewPCG(1, 2))
	const limit, win, maxLate = 2, 10 * time.Millisecond, 3 * time.Millisecond
	w := window.New(limit, win)
	p := New(windowSchedule{w})
	var scheduled []time.Time
	now := t0
	var last time.Time
	for range 1000 {
		at, _ := p.Reserve(now)
		scheduled = append(scheduled, at)
		if at.After(now) {
			now = at.Add(time.Duration(r.Int64N(int64(maxLate) + 1)))
			p.Admitted(at, now)
		}
		last = now
		now = now.Add(time.Microsecond)
	}
	for i := 0; i+limit < len(scheduled); i++ {
		if d := scheduled[i+limit].Sub(scheduled[i]); d < win {
			t.Fatalf("scheduled %d events within %v, window %v allows %d", limit+1, d, win, limit)
		}
	}
	if got, ideal := last.Sub(t0), 499*win; got > ideal+maxLate {
		t.Errorf("1000 events took %v, want at most %v + %v", got, ideal, maxLate)
	}
}

func TestCancelGivesTheReservationBack(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Schedule
	}{
		{"bucket", NewBucket(1, 1)},
		{"window", windowSchedule{window.New(1, time.Second)}},
	} {
		p := New(tc.s)
		p.Reserve(t0)
		at, _ := p.Reserve(t0)
		if !p.Cancel(at) {
			t.Errorf("%s: Cancel(latest) = false, want true", tc.name)
		}
		if again, _ := p.Reserve(t0); !again.Equal(at) {
			t.Errorf("%s: after Cancel the next event is scheduled at t0+%v, want t0+%v", tc.name, again.Sub(t0), at.Sub(t0))
		}
	}
}

func TestCloneIsIndependent(t *testing.T) {
	p := New(NewBucket(1, 1))
	p.Reserve(t0)
	c := p.Clone()
	if c.Full(t0) {
		t.Fatalf("clone of a spent bucket is full")
	}
	c.Reserve(t0)
	if at, _ := p.Reserve(t0); at.Sub(t0) != time.Second {
		t.Errorf("original's next turn = t0+%v after the clone reserved, want t0+1s", at.Sub(t0))
	}
}
