package window

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

type step struct {
	at   time.Duration
	ok   bool          // Allow(at) result
	next time.Duration // NextAllowed(at) before Allow, relative to t0
}

func run(t *testing.T, l *Limiter, steps []step) {
	t.Helper()
	for i, s := range steps {
		if got := l.NextAllowed(at(s.at)); !got.Equal(at(s.next)) {
			t.Errorf("step %d: NextAllowed(t0+%v) = t0+%v, want t0+%v", i, s.at, got.Sub(t0), s.next)
		}
		if got := l.Allow(at(s.at)); got != s.ok {
			t.Errorf("step %d: Allow(t0+%v) = %v, want %v", i, s.at, got, s.ok)
		}
	}
}

func TestLimiterAdmitsUpToLimitThenWaitsForTheOldestToLeave(t *testing.T) {
	l := New(3, time.Second)
	run(t, l, []step{
		{0, true, 0},
		{100 * time.Millisecond, true, 100 * time.Millisecond},
		{200 * time.Millisecond, true, 200 * time.Millisecond},
		{300 * time.Millisecond, false, time.Second},
		{999 * time.Millisecond, false, time.Second},
		{time.Second, true, time.Second}, // event at 0 has left [t-window, t]
		{time.Second, false, 1100 * time.Millisecond},
		{1100 * time.Millisecond, true, 1100 * time.Millisecond},
		{5 * time.Second, true, 5 * time.Second},
	})
}

func TestLimiterDoesNotAllowTheFixedWindowDoubleBurst(t *testing.T) {
	// A fixed window of [0s,1s), [1s,2s) would admit 10 at 0.999s and 10
	// more at 1.0s: 20 events within 1ms. The sliding window admits none
	// until 1.999s.
	l := New(10, time.Second)
	for i := range 10 {
		if !l.Allow(at(999 * time.Millisecond)) {
			t.Fatalf("Allow #%d at 0.999s = false, want true", i)
		}
	}
	for _, d := range []time.Duration{time.Second, 1500 * time.Millisecond, 1998 * time.Millisecond} {
		if l.Allow(at(d)) {
			t.Errorf("Allow(t0+%v) = true, want false (10 admitted at 0.999s)", d)
		}
	}
	if got, want := l.NextAllowed(at(time.Second)), at(1999*time.Millisecond); !got.Equal(want) {
		t.Errorf("NextAllowed(t0+1s) = t0+%v, want t0+1.999s", got.Sub(t0))
	}
	for i := range 10 {
		if !l.Allow(at(1999 * time.Millisecond)) {
			t.Fatalf("Allow #%d at 1.999s = false, want true", i)
		}
	}
	if l.Allow(at(1999 * time.Millisecond)) {
		t.Errorf("Allow #11 at 1.999s = true, want false")
	}
}

func TestLimiterTreatsABackwardsClockAsTheLastAdmission(t *testing.T) {
	l := New(2, time.Second)
	run(t, l, []step{
		{10 * time.Second, true, 10 * time.Second},
		{5 * time.Second, true, 5 * time.Second}, // recorded at 10s
		{6 * time.Second, false, 11 * time.Second},
		{11 * time.Second, true, 11 * time.Second},
		{12 * time.Second, true, 12 * time.Second},
	})
}

func TestNewPanicsOnInvalidArguments(t *testing.T) {
	for _, tc := range []struct {
		limit  int
		window time.Duration
	}{{0, time.Second}, {-1, time.Second}, {1, 0}, {1, -time.Second}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%d, %v) did not panic", tc.limit, tc.window)
				}
			}()
			New(tc.limit, tc.window)
		}()
	}
}

// TestLimiterIsExact feeds random arrivals and checks, from the recorded
// admissions alone, that the limiter is neither over- nor under-restrictive.
func TestLimiterIsExact(t *testing.T) {
	for seed := range uint64(50) {
		r := rand.New(rand.NewPCG(seed, 0))
		limit := 1 + r.IntN(8)
		win := time.Duration(1+r.IntN(1000)) * time.Millisecond
		l := New(limit, win)

		var admitted []time.Time
		now := t0
		for range 2000 {
			// Bursts of simultaneous events, short gaps and long gaps,
			// including arrivals landing exactly on window boundaries.
			switch r.IntN(4) {
			case 0:
			case 1:
				now = now.Add(time.Duration(r.IntN(int(win) / limit)))
			case 2:
				now = now.Add(win / time.Duration(1+r.IntN(4)))
			default:
				now = now.Add(time.Duration(r.Int64N(int64(2 * win))))
			}
			next := l.NextAllowed(now)
			ok := l.Allow(now)
			if ok != next.Equal(now) {
				t.Fatalf("seed %d: NextAllowed(%v) = %v but Allow = %v", seed, now, next, ok)
			}
			// Rejected: exactly limit admissions in (now-win, now], and
			// the oldest of them leaves at next.
			if !ok {
				n := 0
				for i := len(admitted) - 1; i >= 0 && now.Sub(admitted[i]) < win; i-- {
					n++
				}
				if n < limit {
					t.Fatalf("seed %d: Allow(%v) = false with only %d < %d admissions in the last %v",
						seed, now, n, limit, win)
				}
				if want := admitted[len(admitted)-limit].Add(win); !next.Equal(want) {
					t.Fatalf("seed %d: NextAllowed(%v) = %v, want %v", seed, now, next, want)
				}
				continue
			}
			admitted = append(admitted, now)
		}
		// Any interval [t, t+win) holds at most limit admissions iff every
		// admission and the one limit places later are at least win apart.
		for i := 0; i+limit < len(admitted); i++ {
			if d := admitted[i+limit].Sub(admitted[i]); d < win {
				t.Fatalf("seed %d: %d admissions within %v < window %v", seed, limit+1, d, win)
			}
		}
	}
}

func TestLimiterIsSafeForConcurrentUse(t *testing.T) {
	l := New(100, time.Second)
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := 0
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				if l.Allow(t0) {
					mu.Lock()
					admitted++
					mu.Unlock()
				}
				l.NextAllowed(t0)
			}
		})
	}
	wg.Wait()
	if admitted != 100 {
		t.Errorf("admitted %d events at one instant, want limit 100", admitted)
	}
}

func BenchmarkAllow(b *testing.B) {
	l := New(1000, time.Second)
	now := t0
	for b.Loop() {
		now = now.Add(time.Millisecond / 2)
		l.Allow(now)
	}
}

func BenchmarkAllowParallel(b *testing.B) {
	l := New(1000, time.Second)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.Allow(t0)
		}
	})
}

func ExampleLimiter() {
	l := New(2, time.Second) // at most 2 events in any 1s interval
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, d := range []time.Duration{0, 500 * time.Millisecond, 900 * time.Millisecond, time.Second} {
		now := start.Add(d)
		fmt.Printf("t=%v allowed=%v next=%v\n", d, l.Allow(now), l.NextAllowed(now).Sub(start))
	}
	// Output:
	// t=0s allowed=true next=0s
	// t=500ms allowed=true next=1s
	// t=900ms allowed=false next=1s
	// t=1s allowed=true next=1.5s
}

func TestReserveSchedulesTheSlotNotTheWakeUp(t *testing.T) {
	// limit 2 per second, three arrivals at 0: the third is scheduled at 1s.
	// Its waiter waking late does not move the slot: the fifth arrival is
	// still scheduled at 2s.
	l := New(2, time.Second)
	var got []time.Duration
	for range 5 {
		got = append(got, l.Reserve(t0).Sub(t0))
	}
	want := []time.Duration{0, 0, time.Second, time.Second, 2 * time.Second}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Reserve(t0) x5 = %v, want %v", got, want)
	}
	if got := l.FullAt().Sub(t0); got != 3*time.Second {
		t.Errorf("FullAt() = %v, want 3s: the reservation at 2s holds the window until then", got)
	}
	if !l.Cancel(at(2*time.Second)) || l.Cancel(at(time.Second)) {
		t.Errorf("Cancel: want only the latest reservation given back, once")
	}
	if next := l.Reserve(t0).Sub(t0); next != 2*time.Second {
		t.Errorf("after Cancel, Reserve(t0) = %v, want 2s (the slot given back)", next)
	}
	c := l.Clone()
	c.Reserve(t0)
	if next := l.Reserve(t0).Sub(t0); next != 2*time.Second {
		t.Errorf("Reserve on the original after a clone reserved = %v, want 2s", next)
	}
}
