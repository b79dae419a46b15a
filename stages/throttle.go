package stages

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/expr"
	"github.com/pipe-dsl/pipe/internal/ttlcache"
	"github.com/pipe-dsl/pipe/internal/window"
	"github.com/pipe-dsl/pipe/pipeline"
)

type throttleConfig struct {
	Algorithm string        `pipe:"algorithm" enum:"token_bucket,sliding_window" desc:"token_bucket admits rate messages per second on average with bursts of up to burst; sliding_window admits at most limit messages in any interval of length window."`
	Rate      float64       `pipe:"rate" min:"0" desc:"token_bucket: messages per second, > 0. Fractions are allowed: 0.5 is one message every 2s." example:"100"`
	Burst     int           `pipe:"burst" min:"1" desc:"token_bucket: how many messages may pass at once after a quiet spell. At high rates set it to 1-10% of rate (10-100ms of slack), or late timer wake-ups lower the achieved rate (see docs/flow-control.md)." example:"100"`
	Limit     int           `pipe:"limit" min:"1" desc:"sliding_window: the most messages admitted in any window." example:"1000"`
	Window    time.Duration `pipe:"window" min:"0" desc:"sliding_window: the window length, > 0. Memory is limit timestamps per key." example:"1m"`
	Key       *expr.Program `pipe:"key" desc:"CEL expression; each distinct value gets its own limiter (e.g. per customer). Without it one limiter covers every message." example:"msg.customer_id"`
	MaxKeys   int           `pipe:"max_keys" min:"1" desc:"With key: the most limiters kept. When a new key arrives at a full table the least recently used limiter is evicted (counted), and that key starts afresh, so evictions loosen the limit: size this above the number of keys active at once." example:"100000"`
	KeyTTL    time.Duration `pipe:"key_ttl" min:"0" desc:"With key: a limiter idle this long is removed. 0 means the shortest time that cannot loosen the limit: window, or burst/rate (the time to refill). A shorter explicit value is an error." example:"10m"`
	OnLimit   string        `pipe:"on_limit" enum:"block,drop,dead_letter" desc:"What happens to a message over the limit: block waits for it to be admitted (backpressure, nothing lost); drop acks and counts it as dropped (reason rate_limited); dead_letter sends it to the dead-letter sink with reason rate_limited."`
	Scope     string        `pipe:"scope" enum:"process,global" desc:"process: each process has its own limit. global: every replica shares one limit, a GCRA timeline per key in the top-level state: store (Redis only; token_bucket only; see docs/scaling.md)."`
}

func init() {
	component.Register(component.Stage("throttle",
		"Limits the rate of messages passing, overall or per key, by a token bucket or an exact sliding window; blocks, drops or dead-letters the excess.",
		throttleConfig{Algorithm: "token_bucket", Burst: 1, MaxKeys: 10000, OnLimit: "block", Scope: scopeProcess},
		newThrottle))
}

// ThrottleStats counts what a throttle stage did since it was built.
type ThrottleStats struct {
	// Passed counts messages admitted; Delayed those of them that waited.
	Passed, Delayed uint64
	// Dropped and DeadLettered count messages over the limit in those modes.
	Dropped, DeadLettered uint64
	// Keys is the number of limiters held (one when there is no key).
	Keys int
	// KeyEvictions counts limiters removed to make room for a new key before
	// they were idle for key_ttl; each may have let its key exceed the limit.
	KeyEvictions uint64
	// KeyExpirations counts limiters removed after key_ttl idle.
	KeyExpirations uint64
}

// throttle limits the rate of messages, in input order when it has one
// worker. With on_limit block:
//
//	in  -- a b c d ---------------- (rate 1/s, burst 2)
//	out -- a b -- c(+1s) -- d(+2s)
//
// A batch counts as one message; a key needs single messages.
//
// go-streams' flow.Throttler is not used: it resets a quota on a ticker (a
// fixed window), which lets 2x the limit through across a window edge.
type throttle struct {
	clock   pipeline.Clock
	key     *expr.Program
	newLim  func() limiter
	single  limiter                          // when key is nil
	keys    *ttlcache.Cache[string, limiter] // when key is set
	onLimit string
	errOver error // the dead-letter error, naming the limit

	passed, delayed, dropped, deadLettered atomic.Uint64
}

var _ pipeline.Processor = (*throttle)(nil)

// limiter is a token bucket or a sliding window.
type limiter interface {
	// allow admits one message at now if the limit permits.
	allow(now time.Time) bool
	// wait admits one message at now, or blocks until clock says it may
	// pass or ctx is done. It reports whether the message had to wait.
	wait(ctx context.Context, clock pipeline.Clock, now time.Time) (waited bool, err error)
}

func newThrottle(c *throttleConfig, env component.Env) (any, error) {
	var (
		newLim func() limiter
		refill time.Duration // how long an idle limiter takes to forget its past
		desc   string
		errs   []error
	)
	switch c.Algorithm {
	case "token_bucket":
		if !(c.Rate > 0) { // also NaN
			errs = append(errs, errors.New("token_bucket needs rate > 0 (messages per second)"))
		}
		if c.Burst < 1 {
			errs = append(errs, errors.New("token_bucket needs burst >= 1"))
		}
		if c.Limit != 0 || c.Window != 0 {
			errs = append(errs, errors.New("limit and window belong to sliding_window; token_bucket uses rate and burst"))
		}
		if len(errs) == 0 {
			r, b := c.Rate, c.Burst
			newLim = func() limiter { return tokenBucket{rate.NewLimiter(rate.Limit(r), b)} }
			desc = fmt.Sprintf("%g/s, burst %d", r, b)
			refill = time.Duration(min(float64(b)/r*float64(time.Second), math.MaxInt64/2))
		}
	case "sliding_window":
		if c.Limit < 1 {
			errs = append(errs, errors.New("sliding_window needs limit >= 1"))
		}
		if c.Window <= 0 {
			errs = append(errs, errors.New("sliding_window needs window > 0"))
		}
		if c.Rate != 0 {
			errs = append(errs, errors.New("rate belongs to token_bucket; sliding_window uses limit and window"))
		}
		if len(errs) == 0 {
			l, w := c.Limit, c.Window
			newLim = func() limiter { return slidingWindow{window.New(l, w)} }
			desc = fmt.Sprintf("%d per %v", l, w)
			refill = w
		}
	default:
		errs = append(errs, fmt.Errorf("unknown algorithm %q", c.Algorithm))
	}
	if c.MaxKeys < 1 {
		errs = append(errs, errors.New("max_keys must be >= 1"))
	}
	if c.KeyTTL != 0 && c.Key == nil {
		errs = append(errs, errors.New("key_ttl needs a key"))
	}
	if c.KeyTTL != 0 && c.KeyTTL < refill {
		errs = append(errs, fmt.Errorf("key_ttl %v is shorter than %v, the time an idle limiter takes to refill; expiring it sooner would loosen the limit (leave key_ttl unset for the minimum)", c.KeyTTL, refill))
	}
	if len(errs) > 0 {
		return nil, joinLine(errs)
	}
	errOver := pipeline.WithReason(pipeline.ReasonRateLimited, errors.New("rate limit exceeded: "+desc))
	if c.Scope == scopeGlobal {
		return newGlobalThrottle(c, env, errOver) // throttle_global.go
	}
	t := &throttle{clock: env.Clock, key: c.Key, newLim: newLim, onLimit: c.OnLimit,
		errOver: errOver}
	if t.clock == nil {
		t.clock = pipeline.SystemClock
	}
	if c.Key == nil {
		t.single = newLim()
		return t, nil
	}
	ttl := c.KeyTTL
	if ttl == 0 {
		// Round up: a limiter expiring a nanosecond early would be a
		// fresh one with its burst available again a nanosecond early.
		ttl = refill + time.Millisecond
	}
	t.keys = ttlcache.NewIdle[string, limiter](c.MaxKeys, ttl)
	return t, nil
}

func (t *throttle) Process(ctx context.Context, m *pipeline.Message) (*pipeline.Message, error) {
	now := t.clock.Now()
	lim, key, err := t.limiterFor(m, now)
	if err != nil {
		return nil, err
	}
	switch t.onLimit {
	case "drop", "dead_letter":
		if lim.allow(now) {
			break
		}
		if t.onLimit == "drop" {
			t.dropped.Add(1)
			return nil, pipeline.Drop(pipeline.ReasonRateLimited)
		}
		t.deadLettered.Add(1)
		return nil, t.errOver
	default:
		waited, err := lim.wait(ctx, t.clock, now)
		if err != nil {
			return nil, err
		}
		if waited {
			t.delayed.Add(1)
			if t.keys != nil {
				// The idle time counts from admission, not arrival.
				t.keys.Get(key, t.clock.Now())
			}
		}
	}
	t.passed.Add(1)
	return m, nil
}

// limiterFor returns the limiter for m's key, creating it on first sight.
func (t *throttle) limiterFor(m *pipeline.Message, now time.Time) (limiter, string, error) {
	if t.keys == nil {
		return t.single, "", nil
	}
	if m.Batch() != nil {
		return nil, "", errBatch("throttle with a key")
	}
	key, err := keyOf(t.key, m)
	if err != nil {
		return nil, "", err
	}
	lim, _ := t.keys.GetOrSet(key, now, t.newLim)
	return lim, key, nil
}

// Stats returns the stage's counters. It is safe to call concurrently with
// Process.
func (t *throttle) Stats() ThrottleStats {
	s := ThrottleStats{
		Passed:       t.passed.Load(),
		Delayed:      t.delayed.Load(),
		Dropped:      t.dropped.Load(),
		DeadLettered: t.deadLettered.Load(),
		Keys:         1,
	}
	if t.keys != nil {
		cs := t.keys.Stats()
		s.Keys, s.KeyEvictions, s.KeyExpirations = t.keys.Len(), cs.Evictions, cs.Expirations
	}
	return s
}

// joinLine joins errs into one line, as a config error is shown beside one
// source line.
func joinLine(errs []error) error {
	msgs := make([]string, len(errs))
	for i, err := range errs {
		msgs[i] = err.Error()
	}
	return errors.New(strings.Join(msgs, "; "))
}

// tokenBucket waits by reservation, so waiters are admitted in arrival order
// and each at its own instant rather than all at once when a token frees.
type tokenBucket struct{ l *rate.Limiter }

func (b tokenBucket) allow(now time.Time) bool { return b.l.AllowN(now, 1) }

func (b tokenBucket) wait(ctx context.Context, clock pipeline.Clock, now time.Time) (bool, error) {
	r := b.l.ReserveN(now, 1) // always OK: burst >= 1
	d := r.DelayFrom(now)
	if d <= 0 {
		return false, nil
	}
	if err := sleep(ctx, clock, d); err != nil {
		r.CancelAt(clock.Now()) // give the token back to later messages
		return true, err
	}
	return true, nil
}

// slidingWindow waits until the oldest admission leaves the window, then
// tries again: another worker may have taken the slot meanwhile.
type slidingWindow struct{ w *window.Limiter }

func (s slidingWindow) allow(now time.Time) bool { return s.w.Allow(now) }

func (s slidingWindow) wait(ctx context.Context, clock pipeline.Clock, now time.Time) (bool, error) {
	for waited := false; ; waited = true {
		if s.w.Allow(now) {
			return waited, nil
		}
		if err := sleep(ctx, clock, s.w.NextAllowed(now).Sub(now)); err != nil {
			return true, err
		}
		now = clock.Now()
	}
}
