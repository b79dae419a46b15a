package stages

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/expr"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// throttleCfg returns the registered defaults changed by set.
func throttleCfg(set func(c *throttleConfig)) *throttleConfig {
	k, ok := component.Default.Lookup(pipeline.RoleStage, "throttle")
	if !ok {
		panic("throttle is not registered")
	}
	c := k.NewConfig().(*throttleConfig)
	set(c)
	return c
}

func newTestThrottle(t *testing.T, clock pipeline.Clock, set func(c *throttleConfig)) *throttle {
	t.Helper()
	v, err := newThrottle(throttleCfg(set), component.Env{Clock: clock})
	if err != nil {
		t.Fatalf("newThrottle: %v", err)
	}
	return v.(*throttle)
}

func compile(t testing.TB, src string) *expr.Program {
	t.Helper()
	p, err := expr.Compile(src)
	if err != nil {
		t.Fatalf("Compile(%q): %v", src, err)
	}
	return p
}

func msg(body string) *pipeline.Message { return pipeline.NewMessage([]byte(body), nil) }

// admit runs p.Process(m) to completion, firing the fake clock's timers
// whenever the call waits on one, and returns the virtual time it returned
// at. It polls state, never a duration.
func admit(t *testing.T, p pipeline.Processor, clock *pipelinetest.FakeClock, m *pipeline.Message) (time.Time, *pipeline.Message, error) {
	t.Helper()
	type result struct {
		at  time.Time
		out *pipeline.Message
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := p.Process(context.Background(), m)
		done <- result{clock.Now(), out, err}
	}()
	for {
		select {
		case r := <-done:
			return r.at, r.out, r.err
		default:
		}
		if d, ok := clock.Next(); ok {
			clock.Advance(d)
		} else {
			runtime.Gosched()
		}
	}
}

func TestTokenBucketAdmitsExactlyBurstThenRateTimesT(t *testing.T) {
	// Binary fractions keep the limiter's float arithmetic exact: 8/s is
	// one token every 16 steps of 1/128s.
	const burst, step, perToken = 5, time.Second / 128, 16
	clock := pipelinetest.NewFakeClock(t0)
	th := newTestThrottle(t, clock, func(c *throttleConfig) {
		c.Rate, c.Burst, c.OnLimit = 8, burst, "drop"
	})
	admitted := 0
	for k := range 128 * 10 { // 10 virtual seconds, burst+1 offers per step
		for range burst + 1 {
			if out, err := th.Process(context.Background(), msg("x")); err == nil && out != nil {
				admitted++
			}
		}
		if want := burst + k/perToken; admitted != want {
			t.Fatalf("after t0+%v: admitted %d, want burst+rate·t = %d", time.Duration(k)*step, admitted, want)
		}
		clock.Advance(step)
	}
	s := th.Stats()
	if s.Passed != uint64(admitted) || s.Dropped != uint64((burst+1)*128*10-admitted) {
		t.Errorf("Stats() = %+v, want Passed %d, Dropped %d", s, admitted, (burst+1)*128*10-admitted)
	}
}

func TestTokenBucketBlockingAdmitsEachMessageAtItsTurn(t *testing.T) {
	defer goleak.VerifyNone(t)
	clock := pipelinetest.NewFakeClock(t0)
	th := newTestThrottle(t, clock, func(c *throttleConfig) { c.Rate, c.Burst = 4, 3 })
	var got []time.Duration
	for range 8 {
		at, _, err := admit(t, th, clock, msg("x"))
		if err != nil {
			t.Fatalf("Process: %v", err)
		}
		got = append(got, at.Sub(t0))
	}
	ms := time.Millisecond
	want := []time.Duration{0, 0, 0, 250 * ms, 500 * ms, 750 * ms, 1000 * ms, 1250 * ms}
	if !slices.Equal(got, want) {
		t.Errorf("admission times = %v, want %v", got, want)
	}
	if s := th.Stats(); s.Passed != 8 || s.Delayed != 5 {
		t.Errorf("Stats() = %+v, want Passed 8, Delayed 5", s)
	}
}

// checkWindows fails if any interval of length win holds more than limit
// of the sorted times.
func checkWindows(t *testing.T, seed uint64, times []time.Time, limit int, win time.Duration) {
	t.Helper()
	for i := 0; i+limit < len(times); i++ {
		if d := times[i+limit].Sub(times[i]); d < win {
			t.Fatalf("seed %d: %d admissions within %v, window %v allows %d", seed, limit+1, d, win, limit)
		}
	}
}

// arrivals returns n random non-decreasing times: bursts of simultaneous
// arrivals, gaps shorter than the window, and arrivals exactly on window
// boundaries.
func arrivals(r *rand.Rand, n int, win time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	var now time.Duration
	for i := range out {
		switch r.IntN(4) {
		case 0:
		case 1:
			now += time.Duration(r.Int64N(int64(win) / 8))
		case 2:
			now += win
		default:
			now += time.Duration(r.Int64N(int64(2 * win)))
		}
		out[i] = now
	}
	return out
}

func TestSlidingWindowNeverExceedsLimitInAnyWindow(t *testing.T) {
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 1))
		limit, win := 1+r.IntN(10), time.Duration(1+r.IntN(1000))*time.Millisecond
		clock := pipelinetest.NewFakeClock(t0)
		th := newTestThrottle(t, clock, func(c *throttleConfig) {
			c.Algorithm, c.Limit, c.Window, c.OnLimit = "sliding_window", limit, win, "drop"
		})
		var admitted []time.Time
		for _, a := range arrivals(r, 1000, win) {
			clock.Advance(t0.Add(a).Sub(clock.Now()))
			out, err := th.Process(context.Background(), msg("x"))
			var drop *pipeline.DropError
			switch {
			case err == nil && out != nil:
				admitted = append(admitted, clock.Now())
			case !errors.As(err, &drop) || drop.Reason != pipeline.ReasonRateLimited:
				t.Fatalf("seed %d: Process = %v, %v; want the message or a rate_limited drop", seed, out, err)
			}
		}
		checkWindows(t, seed, admitted, limit, win)
		if len(admitted) < limit {
			t.Fatalf("seed %d: admitted %d, want at least limit %d", seed, len(admitted), limit)
		}
	}
}

func TestSlidingWindowBlockingAdmitsAtTheEarliestLegalInstant(t *testing.T) {
	defer goleak.VerifyNone(t)
	for seed := range uint64(10) {
		r := rand.New(rand.NewPCG(seed, 2))
		limit, win := 1+r.IntN(5), time.Duration(1+r.IntN(100))*time.Millisecond
		clock := pipelinetest.NewFakeClock(t0)
		th := newTestThrottle(t, clock, func(c *throttleConfig) {
			c.Algorithm, c.Limit, c.Window = "sliding_window", limit, win
		})
		var admitted []time.Time
		for _, a := range arrivals(r, 300, win) {
			if arrive := t0.Add(a); arrive.After(clock.Now()) {
				clock.Advance(arrive.Sub(clock.Now()))
			}
			// Nothing is lost in block mode, and each message passes as soon
			// as the window allows: at max(arrival, the admission limit
			// places before it + window).
			want := clock.Now()
			if n := len(admitted); n >= limit {
				if free := admitted[n-limit].Add(win); free.After(want) {
					want = free
				}
			}
			at, _, err := admit(t, th, clock, msg("x"))
			if err != nil {
				t.Fatalf("seed %d: Process: %v", seed, err)
			}
			if !at.Equal(want) {
				t.Fatalf("seed %d: message %d admitted at t0+%v, want t0+%v", seed, len(admitted), at.Sub(t0), want.Sub(t0))
			}
			admitted = append(admitted, at)
		}
		checkWindows(t, seed, admitted, limit, win)
	}
}

func TestSlidingWindowStopsTheFixedWindowDoubleBurst(t *testing.T) {
	clock := pipelinetest.NewFakeClock(t0)
	th := newTestThrottle(t, clock, func(c *throttleConfig) {
		c.Algorithm, c.Limit, c.Window, c.OnLimit = "sliding_window", 10, time.Second, "drop"
	})
	count := func() (n int) {
		for range 20 {
			if out, _ := th.Process(context.Background(), msg("x")); out != nil {
				n++
			}
		}
		return n
	}
	clock.Advance(999 * time.Millisecond)
	if n := count(); n != 10 {
		t.Fatalf("admitted %d at 0.999s, want 10", n)
	}
	clock.Advance(time.Millisecond) // a fixed window would reset here
	if n := count(); n != 0 {
		t.Errorf("admitted %d at 1.000s, want 0: the 10 at 0.999s are within the window", n)
	}
	clock.Advance(999 * time.Millisecond)
	if n := count(); n != 10 {
		t.Errorf("admitted %d at 1.999s, want 10", n)
	}
}

func TestKeyGivesEachKeyItsOwnLimiter(t *testing.T) {
	clock := pipelinetest.NewFakeClock(t0)
	th := newTestThrottle(t, clock, func(c *throttleConfig) {
		c.Rate, c.Burst, c.OnLimit, c.Key = 1, 1, "drop", compile(t, "msg.customer")
	})
	var passed []string
	for _, b := range []string{`{"customer":"a"}`, `{"customer":"b"}`, `{"customer":"a"}`, `{"customer":1}`, `{"customer":"b"}`, `{"customer":"1"}`} {
		if out, _ := th.Process(context.Background(), msg(b)); out != nil {
			passed = append(passed, b)
		}
	}
	want := []string{`{"customer":"a"}`, `{"customer":"b"}`, `{"customer":1}`, `{"customer":"1"}`}
	if !slices.Equal(passed, want) {
		t.Errorf("passed %v, want %v (1 and \"1\" are different keys)", passed, want)
	}
	if s := th.Stats(); s.Keys != 4 {
		t.Errorf("Stats().Keys = %d, want 4", s.Keys)
	}
	_, err := th.Process(context.Background(), msg(`not json`))
	if got := pipeline.Reason(err); got != pipeline.ReasonInvalidPayload {
		t.Errorf("Process(not json) reason = %q (%v), want %q", got, err, pipeline.ReasonInvalidPayload)
	}
}

func TestIdleKeysExpireOnlyOnceTheirLimiterIsFull(t *testing.T) {
	clock := pipelinetest.NewFakeClock(t0)
	th := newTestThrottle(t, clock, func(c *throttleConfig) {
		c.Algorithm, c.Limit, c.Window, c.OnLimit = "sliding_window", 1, time.Minute, "drop"
		c.Key = compile(t, "meta.k")
	})
	send := func(k string) bool {
		m := msg("")
		m.Meta = map[string]string{"k": k}
		out, _ := th.Process(context.Background(), m)
		return out != nil
	}
	if !send("a") {
		t.Fatal("first a dropped")
	}
	clock.Advance(time.Minute - time.Nanosecond)
	if send("a") {
		t.Errorf("second a within the window passed: the key expired too early")
	}
	clock.Advance(2 * time.Minute)
	if !send("b") || !send("a") {
		t.Errorf("a and b after the window dropped, want passed")
	}
	if s := th.Stats(); s.KeyExpirations != 1 || s.KeyEvictions != 0 || s.Keys != 2 {
		t.Errorf("Stats() = %+v, want 1 expiration (a), 0 evictions, 2 keys", s)
	}
}

func TestIdleExpiryNeverChangesWhatAKeyAdmits(t *testing.T) {
	// Given one key with quiet spells longer than key_ttl, the keyed throttle
	// (whose limiter expires and is recreated) admits exactly what a keyless
	// throttle (one limiter forever) admits.
	for _, tc := range []struct {
		name string
		set  func(c *throttleConfig)
	}{
		{"token_bucket", func(c *throttleConfig) { c.Rate, c.Burst = 8, 4 }},
		{"sliding_window", func(c *throttleConfig) { c.Algorithm, c.Limit, c.Window = "sliding_window", 3, time.Second/2 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, 7))
			clock := pipelinetest.NewFakeClock(t0)
			cfg := func(keyed bool) func(c *throttleConfig) {
				return func(c *throttleConfig) {
					tc.set(c)
					c.OnLimit = "drop"
					if keyed {
						c.Key = compile(t, "meta.k")
					}
				}
			}
			keyed, plain := newTestThrottle(t, clock, cfg(true)), newTestThrottle(t, clock, cfg(false))
			for i, a := range arrivals(r, 3000, 600*time.Millisecond) {
				clock.Advance(t0.Add(a).Sub(clock.Now()))
				m := msg("")
				m.Meta = map[string]string{"k": "a"}
				got, _ := keyed.Process(context.Background(), m)
				want, _ := plain.Process(context.Background(), msg(""))
				if (got != nil) != (want != nil) {
					t.Fatalf("message %d at t0+%v: keyed admitted %v, keyless %v", i, a, got != nil, want != nil)
				}
			}
			if s := keyed.Stats(); s.KeyExpirations == 0 {
				t.Errorf("Stats() = %+v: the key never expired, so the test proved nothing", s)
			}
		})
	}
}

func TestKeyTableStaysBoundedUnderAMillionDistinctKeys(t *testing.T) {
	// A million keys take 0.7s, but 20s under -race, where 20,000 show
	// the same bound.
	n := 1_000_000
	if testing.Short() || raceEnabled {
		n = 20_000
	}
	const maxKeys = 1000
	clock := pipelinetest.NewFakeClock(t0)
	th := newTestThrottle(t, clock, func(c *throttleConfig) {
		c.Rate, c.Burst, c.OnLimit, c.MaxKeys = 1, 1, "drop", maxKeys
		c.Key = compile(t, "meta.k")
	})
	th.logger = slog.New(slog.DiscardHandler)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	// The CEL path for some keys, the table directly for the rest: the
	// bound is the table's, and CEL would triple the time. All arrive at
	// one instant, so every limiter in the table is still limiting: the
	// first maxKeys keys get their own, the rest share the overflow one,
	// which admits one message (burst 1) and drops the others.
	passed := 0
	for i := range n {
		if i < 10_000 {
			m := msg("")
			m.Meta = map[string]string{"k": fmt.Sprint(i)}
			if out, _ := th.Process(context.Background(), m); out != nil {
				passed++
			}
			continue
		}
		th.limiterForKey(fmt.Sprint(i), clock.Now())
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	s := th.Stats()
	if s.Keys != maxKeys || s.KeyEvictions != 0 || s.Overflow != uint64(n-maxKeys) || passed != maxKeys+1 {
		t.Errorf("after %d keys: Stats() = %+v, passed %d; want Keys %d, no evictions, Overflow %d, passed %d",
			n, s, passed, maxKeys, n-maxKeys, maxKeys+1)
	}
	// A million limiters would hold well over 100MB.
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 10<<20 {
		t.Errorf("heap grew by %d bytes for %d keys (max_keys %d), want < 10MiB", grew, n, maxKeys)
	}
	// Once the limiters hold nothing back, new keys take their places.
	clock.Advance(time.Second)
	for i := range 10 {
		m := msg("")
		m.Meta = map[string]string{"k": fmt.Sprint("new", i)}
		if out, err := th.Process(context.Background(), m); out == nil {
			t.Fatalf("new key %d after the refill: Process = %v, %v; want passed", i, out, err)
		}
	}
	if s := th.Stats(); s.KeyEvictions != 10 || s.Keys != maxKeys {
		t.Errorf("after the refill and 10 new keys: Stats() = %+v, want 10 evictions, Keys %d", s, maxKeys)
	}
}

func TestCancellationInterruptsTheWaitAndReturnsTheToken(t *testing.T) {
	defer goleak.VerifyNone(t)
	clock := pipelinetest.NewFakeClock(t0)
	th := newTestThrottle(t, clock, func(c *throttleConfig) { c.Rate, c.Burst = 1.0/3600, 1 })
	if out, err := th.Process(context.Background(), msg("first")); out == nil || err != nil {
		t.Fatalf("first message: Process = %v, %v; want it passed", out, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := th.Process(ctx, msg("second"))
		done <- err
	}()
	clock.WaitTimers(1)
	if d, _ := clock.Next(); d != time.Hour {
		t.Errorf("second message waits %v, want 1h", d)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Process after cancel = %v, want context.Canceled", err)
	}
	if n := clock.Timers(); n != 0 {
		t.Errorf("%d timers armed after cancel, want 0", n)
	}
	// The cancelled reservation gave its token back: the next message
	// waits one interval, not two.
	go func() {
		_, err := th.Process(context.Background(), msg("third"))
		done <- err
	}()
	clock.WaitTimers(1)
	if d, _ := clock.Next(); d != time.Hour {
		t.Errorf("third message waits %v, want 1h (the cancelled token returned)", d)
	}
	clock.Advance(time.Hour)
	if err := <-done; err != nil {
		t.Errorf("third message: %v", err)
	}
}

// throttled builds source -> throttle -> sink with a dead-letter sink.
func throttled(t *testing.T, clock pipeline.Clock, th *throttle, src pipeline.Source, out, dlq pipeline.Sink) *pipeline.Pipeline {
	t.Helper()
	p := pipeline.New("test")
	p.Clock = clock
	for _, err := range []error{
		p.AddSource("src", "test", src),
		p.AddStage("throttle", "throttle", th, pipeline.NodeOptions{}),
		p.AddSink("out", "test", out, pipeline.NodeOptions{}),
		p.Connect("src", "", "throttle"),
		p.Connect("throttle", "", "out"),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if dlq != nil {
		if err := p.SetDeadLetter("test", dlq, pipeline.NodeOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func statsOf(p *pipeline.Pipeline, name string) pipeline.NodeStats {
	for _, s := range p.Stats() {
		if s.Name == name {
			return s
		}
	}
	return pipeline.NodeStats{}
}

func TestOnLimitDropAcksAndCountsTheExcess(t *testing.T) {
	defer goleak.VerifyNone(t)
	clock := pipelinetest.NewFakeClock(t0)
	th := newTestThrottle(t, clock, func(c *throttleConfig) { c.Rate, c.Burst, c.OnLimit = 1, 2, "drop" })
	src, out, dlq := pipelinetest.NewSource("a", "b", "c", "d", "e"), &pipelinetest.Sink{}, &pipelinetest.Sink{}
	p := throttled(t, clock, th, src, out, dlq)
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := out.Bodies(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("sink got %v, want [a b] (burst 2)", got)
	}
	if got := src.Acked(); len(got) != 5 || len(src.Nacked()) != 0 {
		t.Errorf("acked %v, nacked %v; want all 5 acked", got, src.Nacked())
	}
	if s := statsOf(p, "throttle"); s.Dropped != 3 {
		t.Errorf("throttle Dropped = %d, want 3", s.Dropped)
	}
	if n := dlq.Writes(); n != 0 {
		t.Errorf("dead-letter sink got %d, want 0", n)
	}
}

func TestOnLimitDeadLetterRoutesTheExcessWithReasonRateLimited(t *testing.T) {
	defer goleak.VerifyNone(t)
	clock := pipelinetest.NewFakeClock(t0)
	th := newTestThrottle(t, clock, func(c *throttleConfig) { c.Rate, c.Burst, c.OnLimit = 1, 1, "dead_letter" })
	src, out, dlq := pipelinetest.NewSource(`{"n":1}`, `{"n":2}`, `{"n":3}`), &pipelinetest.Sink{}, &pipelinetest.Sink{}
	p := throttled(t, clock, th, src, out, dlq)
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := out.Bodies(); !slices.Equal(got, []string{`{"n":1}`}) {
		t.Errorf("sink got %v, want the first message only", got)
	}
	var payloads []string
	for _, b := range dlq.Bodies() {
		var dl pipeline.DeadLetter
		if err := json.Unmarshal([]byte(b), &dl); err != nil {
			t.Fatalf("dead letter %s: %v", b, err)
		}
		if dl.Reason != pipeline.ReasonRateLimited || dl.Stage != "throttle" {
			t.Errorf("dead letter reason %q at %q, want %q at throttle", dl.Reason, dl.Stage, pipeline.ReasonRateLimited)
		}
		payloads = append(payloads, string(dl.Payload))
	}
	if !slices.Equal(payloads, []string{`{"n":2}`, `{"n":3}`}) {
		t.Errorf("dead-lettered %v, want n 2 and 3", payloads)
	}
	if got := src.Acked(); len(got) != 3 {
		t.Errorf("acked %v, want all 3 (the dead-letter sink took 2)", got)
	}
}

func TestOnLimitBlockDeliversEverythingInOrderOnTheClock(t *testing.T) {
	defer goleak.VerifyNone(t)
	clock := pipelinetest.NewFakeClock(t0)
	th := newTestThrottle(t, clock, func(c *throttleConfig) { c.Rate, c.Burst = 10, 1 })
	bodies := make([]string, 20)
	for i := range bodies {
		bodies[i] = fmt.Sprint(i)
	}
	src, out := pipelinetest.NewSource(bodies...), &pipelinetest.Sink{}
	p := throttled(t, clock, th, src, out, nil)
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background()) }()
	for waits := 0; ; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if got := out.Bodies(); !slices.Equal(got, bodies) {
				t.Errorf("sink got %v, want %v", got, bodies)
			}
			if got, want := clock.Now().Sub(t0), 1900*time.Millisecond; got != want || waits != 19 {
				t.Errorf("20 messages at 10/s took %v in %d waits, want %v in 19", got, waits, want)
			}
			return
		default:
		}
		if d, ok := clock.Next(); ok {
			clock.Advance(d)
			waits++
		} else {
			runtime.Gosched()
		}
	}
}

func TestBlockingWithWorkersKeepsTheLimit(t *testing.T) {
	defer goleak.VerifyNone(t)
	const n, workers = 20, 4
	for _, tc := range []struct {
		name string
		set  func(c *throttleConfig)
		end  time.Duration // when the last message passes
		ok   func(at []time.Time) bool
	}{
		{"token_bucket", func(c *throttleConfig) { c.Rate, c.Burst = 10, 2 }, 1800 * time.Millisecond,
			func(at []time.Time) bool { // at most burst + rate·t by any t
				for i, a := range at {
					if i+1 > 2+int(a.Sub(t0)/(100*time.Millisecond)) {
						return false
					}
				}
				return true
			}},
		{"sliding_window", func(c *throttleConfig) { c.Algorithm, c.Limit, c.Window = "sliding_window", 2, time.Second }, 9 * time.Second,
			func(at []time.Time) bool {
				for i := 0; i+2 < len(at); i++ {
					if at[i+2].Sub(at[i]) < time.Second {
						return false
					}
				}
				return true
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := pipelinetest.NewFakeClock(t0)
			th := newTestThrottle(t, clock, tc.set)
			// Record each admission before counting it, and move the clock
			// only once every message still in the throttle waits on a
			// timer: so the recorded time is the admission time.
			var (
				mu       sync.Mutex
				at       []time.Time
				admitted atomic.Int64
			)
			rec := pipelinetest.ProcessorFunc(func(ctx context.Context, m *pipeline.Message) (*pipeline.Message, error) {
				out, err := th.Process(ctx, m)
				mu.Lock()
				at = append(at, clock.Now())
				mu.Unlock()
				admitted.Add(1)
				return out, err
			})
			bodies := make([]string, n)
			for i := range bodies {
				bodies[i] = fmt.Sprint(i)
			}
			p := pipeline.New("test")
			p.Clock = clock
			for _, err := range []error{
				p.AddSource("src", "test", pipelinetest.NewSource(bodies...)),
				p.AddStage("throttle", "throttle", rec, pipeline.NodeOptions{Workers: workers}),
				p.AddSink("out", "test", &pipelinetest.Sink{}, pipeline.NodeOptions{}),
				p.Connect("src", "", "throttle"),
				p.Connect("throttle", "", "out"),
			} {
				if err != nil {
					t.Fatal(err)
				}
			}
			done := make(chan error, 1)
			go func() { done <- p.Run(context.Background()) }()
			for running := true; running; {
				select {
				case err := <-done:
					if err != nil {
						t.Fatal(err)
					}
					running = false
				default:
					waiting := min(workers, n-int(admitted.Load()))
					if d, ok := clock.Next(); ok && clock.Timers() == waiting {
						clock.Advance(d)
					} else {
						runtime.Gosched()
					}
				}
			}
			slices.SortFunc(at, time.Time.Compare)
			if len(at) != n || !tc.ok(at) {
				t.Fatalf("admitted at %v: want %d within the limit", at, n)
			}
			if got := at[n-1].Sub(t0); got != tc.end {
				t.Errorf("last admitted at t0+%v, want t0+%v (no later than the limit requires)", got, tc.end)
			}
		})
	}
}

func TestKillWhileBlockedReturnsPromptlyAndNacks(t *testing.T) {
	defer goleak.VerifyNone(t)
	clock := pipelinetest.NewFakeClock(t0)
	th := newTestThrottle(t, clock, func(c *throttleConfig) { c.Rate, c.Burst = 1.0/3600, 1 })
	src, out := pipelinetest.NewSource("a", "b", "c"), &pipelinetest.Sink{}
	p := throttled(t, clock, th, src, out, nil)
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background()) }()
	clock.WaitTimers(1) // b waits an hour for its token
	for out.Writes() < 1 || src.Sent() < 3 {
		runtime.Gosched() // a is on its way to the sink, c into the queue
	}
	p.Kill()
	var abandoned *pipeline.AbandonedError
	if err := <-done; !errors.As(err, &abandoned) {
		t.Fatalf("Run after Kill = %v, want *AbandonedError", err)
	}
	if got := out.Bodies(); !slices.Equal(got, []string{"a"}) {
		t.Errorf("sink got %v, want [a]", got)
	}
	if n := len(src.Nacked()); n != 2 {
		t.Errorf("nacked %d, want 2 (b waiting, c queued): nothing is lost", n)
	}
}

func TestATinyRateGetsAKeyTTLThatDoesNotOverflow(t *testing.T) {
	th := newTestThrottle(t, pipelinetest.NewFakeClock(t0), func(c *throttleConfig) {
		c.Rate, c.Burst, c.Key = 1e-12, 1000, compile(t, "meta.k")
	})
	m := msg("")
	m.Meta = map[string]string{"k": "a"}
	if out, err := th.Process(context.Background(), m); out == nil {
		t.Errorf("first message at rate 1e-12: Process = %v, %v; want passed", out, err)
	}
}

func TestThrottleConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(c *throttleConfig)
		want string
	}{
		{"no rate", func(c *throttleConfig) {}, "token_bucket needs rate > 0"},
		{"burst 0", func(c *throttleConfig) { c.Rate, c.Burst = 1, 0 }, "burst >= 1"},
		{"window fields on a bucket", func(c *throttleConfig) { c.Rate, c.Limit = 1, 5 }, "limit and window belong to sliding_window"},
		{"no limit", func(c *throttleConfig) { c.Algorithm, c.Window = "sliding_window", time.Second }, "sliding_window needs limit >= 1"},
		{"no window", func(c *throttleConfig) { c.Algorithm, c.Limit = "sliding_window", 1 }, "sliding_window needs window > 0"},
		{"rate on a window", func(c *throttleConfig) {
			c.Algorithm, c.Limit, c.Window, c.Rate = "sliding_window", 1, time.Second, 3
		}, "rate belongs to token_bucket"},
		{"max_keys 0", func(c *throttleConfig) { c.Rate, c.MaxKeys = 1, 0 }, "max_keys must be >= 1"},
		{"key_ttl below refill", func(c *throttleConfig) {
			c.Rate, c.Burst, c.KeyTTL, c.Key = 2, 10, 4*time.Second, compile(t, "msg.k")
		}, "key_ttl 4s is shorter than 5s"},
		{"key_ttl without key", func(c *throttleConfig) { c.Rate, c.KeyTTL = 1, time.Hour }, "key_ttl needs a key"},
		{"NaN rate", func(c *throttleConfig) { c.Rate = math.NaN() }, "token_bucket needs rate > 0"},
		{"unknown algorithm", func(c *throttleConfig) { c.Algorithm = "leaky" }, `unknown algorithm "leaky"`},
	} {
		_, err := newThrottle(throttleCfg(tc.set), component.Env{})
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: newThrottle error = %v, want one line containing %q", tc.name, err, tc.want)
		}
	}
}
