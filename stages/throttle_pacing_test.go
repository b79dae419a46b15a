package stages

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

// admitLate is admit with a clock that fires timers late: whenever the call
// waits, the clock jumps step ahead, past the timer's deadline by up to step.
func admitLate(t *testing.T, p pipeline.Processor, clock *pipelinetest.FakeClock, m *pipeline.Message, step time.Duration) time.Time {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := p.Process(context.Background(), m)
		done <- err
	}()
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Process: %v", err)
			}
			return clock.Now()
		default:
		}
		if clock.Timers() > 0 {
			clock.Advance(step)
		} else {
			runtime.Gosched()
		}
	}
}

func keyed(k string) *pipeline.Message {
	m := msg("")
	m.Meta = map[string]string{"k": k}
	return m
}

func TestLateWakeUpsCatchUpSoTheRateHolds(t *testing.T) {
	// Given every wait waking up to 3.5 intervals late (the clock moves in
	// steps of 350 ms at 10/s), when 101 messages pass a blocking throttle,
	// then they take 10 s as a punctual clock would (plus at most one step),
	// and by no time t have more than the limit allows passed.
	const n, step = 101, 350 * time.Millisecond
	for _, tc := range []struct {
		name  string
		set   func(c *throttleConfig)
		burst int
		ok    func(i int, at time.Duration) bool // may the i-th (0-based) pass at t0+at?
	}{
		{"token_bucket burst 1", func(c *throttleConfig) { c.Rate, c.Burst = 10, 1 }, 1,
			func(i int, at time.Duration) bool { return i+1 <= 1+int(at/(100*time.Millisecond)) }},
		{"sliding_window 1 per 100ms", func(c *throttleConfig) {
			c.Algorithm, c.Limit, c.Window = "sliding_window", 1, 100*time.Millisecond
		}, 1, func(i int, at time.Duration) bool { return i+1 <= 1+int(at/(100*time.Millisecond)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := pipelinetest.NewFakeClock(t0)
			th := newTestThrottle(t, clock, tc.set)
			var last time.Duration
			for i := range n {
				at := admitLate(t, th, clock, msg("x"), step).Sub(t0)
				if !tc.ok(i, at) {
					t.Fatalf("message %d passed at t0+%v: more than the limit allows by then", i, at)
				}
				last = at
			}
			if ideal := 10 * time.Second; last < ideal || last > ideal+step {
				t.Errorf("%d messages took %v of virtual time, want %v to %v (a wait that wakes late loses nothing)", n, last, ideal, ideal+step)
			}
			if s := th.Stats(); s.Passed != n || s.Delayed != n-1 {
				t.Errorf("Stats() = %+v, want Passed %d, Delayed %d", s, n, n-1)
			}
		})
	}
}

func TestRotatingKeysBeyondMaxKeysNeverLoosenTheLimit(t *testing.T) {
	// Given max_keys 2 and four keys in rotation at 10/s per key, when 100
	// messages pass a blocking throttle, then no key ever exceeds 1 + 10·t
	// (so the run takes at least 2.4 s, not the 57 ms LRU churn allowed),
	// keys that do not fit share the overflow limiter or take the place of
	// a limiter that holds nothing back, and the operator is warned once,
	// not per message.
	var logs bytes.Buffer
	clock := pipelinetest.NewFakeClock(t0)
	th := newTestThrottle(t, clock, func(c *throttleConfig) {
		c.Rate, c.Burst, c.MaxKeys, c.Key = 10, 1, 2, compile(t, "meta.k")
	})
	th.logger = slog.New(slog.NewTextHandler(&logs, nil))
	keys := []string{"a", "b", "c", "d"}
	passed := map[string]int{}
	var last time.Time
	for i := range 100 {
		k := keys[i%4]
		at, _, err := admit(t, th, clock, keyed(k))
		if err != nil {
			t.Fatalf("message %d (%s): %v", i, k, err)
		}
		passed[k]++
		if allowed := 1 + int(at.Sub(t0)/(100*time.Millisecond)); passed[k] > allowed {
			t.Fatalf("key %s: %d passed by t0+%v, the limit allows %d", k, passed[k], at.Sub(t0), allowed)
		}
		last = at
	}
	if got := last.Sub(t0); got < 2400*time.Millisecond {
		t.Errorf("100 messages took %v, want at least 2.4s (25 per key at 10/s)", got)
	}
	s := th.Stats()
	if s.Overflow == 0 || s.Keys != 2 || s.Passed != 100 {
		t.Errorf("Stats() = %+v, want some Overflow, Keys 2, Passed 100", s)
	}
	if n := strings.Count(logs.String(), "key table full"); n != 1 {
		t.Errorf("logged %d overflow warnings over %v, want 1 (at most one a minute):\n%s", n, last.Sub(t0), logs.String())
	}
	clock.Advance(overflowWarnEvery)
	for _, k := range []string{"a", "b", "e"} { // e finds a and b limiting
		admit(t, th, clock, keyed(k))
	}
	if n := strings.Count(logs.String(), "key table full"); n != 2 {
		t.Errorf("a minute later, logged %d overflow warnings in all, want 2", n)
	}
}

func TestRotatingKeysAtOneInstantPassOnlyTheirBurst(t *testing.T) {
	// The case in drop mode: with LRU churn resetting buckets, 100
	// messages of four rotating keys all passed. Now a and b pass once on
	// their own limiters, c once on the overflow limiter, and nothing else.
	clock := pipelinetest.NewFakeClock(t0)
	th := newTestThrottle(t, clock, func(c *throttleConfig) {
		c.Rate, c.Burst, c.MaxKeys, c.OnLimit, c.Key = 10, 1, 2, "drop", compile(t, "meta.k")
	})
	th.logger = slog.New(slog.DiscardHandler)
	var got []string
	for i := range 100 {
		k := string(rune('a' + i%4))
		if out, _ := th.Process(context.Background(), keyed(k)); out != nil {
			got = append(got, k)
		}
	}
	if fmt.Sprint(got) != "[a b c]" {
		t.Errorf("passed %v, want [a b c]", got)
	}
}

func TestAKeyLeavingTheOverflowTakesItsDebtAlong(t *testing.T) {
	// Given max_keys 1 held by a, b passes on the overflow limiter at 0.9s.
	// At 1s a's limiter is full again and b takes its place: b's new
	// limiter starts from the overflow's state, so b cannot pass again
	// before 1.9s.
	clock := pipelinetest.NewFakeClock(t0)
	th := newTestThrottle(t, clock, func(c *throttleConfig) {
		c.Rate, c.Burst, c.MaxKeys, c.OnLimit, c.Key = 1, 1, 1, "drop", compile(t, "meta.k")
	})
	th.logger = slog.New(slog.DiscardHandler)
	pass := func(k string) bool {
		out, _ := th.Process(context.Background(), keyed(k))
		return out != nil
	}
	if !pass("a") {
		t.Fatal("a at 0s dropped")
	}
	clock.Advance(900 * time.Millisecond)
	if !pass("b") {
		t.Fatal("b at 0.9s (overflow) dropped")
	}
	clock.Advance(100 * time.Millisecond)
	if pass("b") {
		t.Errorf("b passed again at 1s, 0.1s after its last: a key leaving the overflow started afresh")
	}
	if s := th.Stats(); s.KeyEvictions != 1 || s.Overflow != 1 {
		t.Errorf("Stats() = %+v, want 1 eviction (a), 1 overflow (b at 0.9s)", s)
	}
	clock.Advance(900 * time.Millisecond)
	if !pass("b") {
		t.Errorf("b at 1.9s dropped, want passed")
	}
}

func TestThrottleReportsItsFigures(t *testing.T) {
	clock := pipelinetest.NewFakeClock(t0)
	th := newTestThrottle(t, clock, func(c *throttleConfig) {
		c.Rate, c.Burst, c.MaxKeys, c.OnLimit, c.Key = 1, 1, 1, "drop", compile(t, "meta.k")
	})
	th.logger = slog.New(slog.DiscardHandler)
	for _, k := range []string{"a", "a", "b", "c"} {
		th.Process(context.Background(), keyed(k))
	}
	got := map[string]float64{}
	for _, f := range th.Report() {
		got[f.Name] = f.Value
	}
	want := map[string]float64{"admitted": 2, "limited": 0, "dropped": 2, "dead_lettered": 0,
		"keys": 1, "key_evictions": 0, "key_expirations": 0, "overflow": 2}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Report() = %v, want %v", got, want)
	}
	plain := newTestThrottle(t, clock, func(c *throttleConfig) { c.Rate = 1 })
	if n := len(plain.Report()); n != 4 {
		t.Errorf("keyless Report() has %d figures, want 4 (no key figures)", n)
	}
}
