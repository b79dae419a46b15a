package stages

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/expr"
	"github.com/pipe-dsl/pipe/internal/pace"
	"github.com/pipe-dsl/pipe/internal/ttlcache"
	"github.com/pipe-dsl/pipe/internal/window"
	"github.com/pipe-dsl/pipe/pipeline"
)

type throttleConfig struct {
	Algorithm string        `pipe:"algorithm" enum:"token_bucket,sliding_window" desc:"token_bucket admits rate messages per second on average with bursts of up to burst; sliding_window admits at most limit messages in any interval of length window."`
	Rate      float64       `pipe:"rate" min:"0" desc:"token_bucket: messages per second, > 0. Fractions are allowed: 0.5 is one message every 2s." example:"100"`
	Burst     int           `pipe:"burst" min:"1" desc:"token_bucket: how many messages may pass at once after a quiet spell. The rate holds at any burst, 1 included: a late timer wake-up lets the messages that came due meanwhile pass at once." example:"100"`
	Limit     int           `pipe:"limit" min:"1" desc:"sliding_window: the most messages admitted in any window." example:"1000"`
	Window    time.Duration `pipe:"window" min:"0" desc:"sliding_window: the window length, > 0. Memory is limit timestamps per key." example:"1m"`
	Key       *expr.Program `pipe:"key" desc:"CEL expression; each distinct value gets its own limiter (e.g. per customer). Without it one limiter covers every message." example:"msg.customer_id"`
	MaxKeys   int           `pipe:"max_keys" min:"1" desc:"With key: the most limiters kept. A new key at a full table takes the place of the least recently used limiter once that one holds nothing back (an eviction); otherwise it shares one overflow limiter, at the per-key limit, with every key that did not fit (counted as overflow, warned about once a minute). The limit is never loosened; a table too small makes it stricter." example:"100000"`
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
	// Passed counts messages admitted; Delayed those of them the limit held
	// back (in block mode: that were scheduled later than they arrived).
	Passed, Delayed uint64
	// Dropped and DeadLettered count messages over the limit in those modes.
	Dropped, DeadLettered uint64
	// Keys is the number of limiters held (one when there is no key).
	Keys int
	// KeyEvictions counts limiters removed to make room for a new key. Only
	// a limiter that holds nothing back any more is evicted, so an eviction
	// never loosens the limit.
	KeyEvictions uint64
	// KeyExpirations counts limiters removed after key_ttl idle.
	KeyExpirations uint64
	// Overflow counts messages whose key found the table full of limiters
	// still limiting: they shared the overflow limiter, at the per-key limit.
	Overflow uint64
}

// throttle limits the rate of messages, in input order when it has one
// worker. With on_limit block:
//
//	in  -- a b c d ---------------- (rate 1/s, burst 2)
//	out -- a b -- c(+1s) -- d(+2s)
//
// A batch counts as one message; a key needs single messages.
//
// Admissions are scheduled on an absolute timeline (internal/pace): a
// message waits until its scheduled time, and when the wait wakes late the
// messages behind it that came due meanwhile pass at once, so the rate holds
// at any rate and burst however late timers fire.
//
// go-streams' flow.Throttler is not used: it resets a quota on a ticker (a
// fixed window), which lets 2x the limit through across a window edge.
type throttle struct {
	clock    pipeline.Clock
	key      *expr.Program
	newLim   func() *pace.Pacer
	single   *pace.Pacer                          // when key is nil
	keys     *ttlcache.Cache[string, *pace.Pacer] // when key is set
	overflow *pace.Pacer                          // with keys: shared by keys that do not fit
	maxKeys  int
	onLimit  string
	errOver  error // the dead-letter error, naming the limit
	logger   *slog.Logger
	node     string
	nextWarn atomic.Int64 // unix nanoseconds: no overflow warning before then

	passed, delayed, dropped, deadLettered, overflowed atomic.Uint64
}

var (
	_ pipeline.Processor = (*throttle)(nil)
	_ pipeline.Reporter  = (*throttle)(nil)
)

// overflowWarnEvery is the least time between two overflow warnings.
const overflowWarnEvery = time.Minute

func newThrottle(c *throttleConfig, env component.Env) (any, error) {
	var (
		newLim func() *pace.Pacer
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
			newLim = func() *pace.Pacer { return pace.New(pace.NewBucket(r, b)) }
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
			newLim = func() *pace.Pacer { return pace.New(windowSchedule{window.New(l, w)}) }
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
	t := &throttle{clock: env.Clock, key: c.Key, newLim: newLim, onLimit: c.OnLimit, maxKeys: c.MaxKeys,
		errOver: errOver, logger: env.Logger, node: env.Node}
	if t.clock == nil {
		t.clock = pipeline.SystemClock
	}
	if t.logger == nil {
		t.logger = slog.Default()
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
	// A limiter still holding its key back is never dropped: it neither
	// expires nor makes room for a new key, which shares the overflow
	// limiter instead.
	holding := func(p *pace.Pacer, now time.Time) bool { return !p.Full(now) }
	t.keys = ttlcache.NewIdleKept[string, *pace.Pacer](c.MaxKeys, ttl, holding)
	t.overflow = newLim()
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
		if lim.Allow(now) {
			break
		}
		if t.onLimit == "drop" {
			t.dropped.Add(1)
			return nil, pipeline.Drop(pipeline.ReasonRateLimited)
		}
		t.deadLettered.Add(1)
		return nil, t.errOver
	default:
		at, limited := lim.Reserve(now)
		if at.After(now) {
			if err := sleep(ctx, t.clock, at.Sub(now)); err != nil {
				lim.Cancel(at) // give the turn back to later messages
				return nil, err
			}
			now = t.clock.Now()
			lim.Admitted(at, now)
			if key != "" {
				// The idle time counts from admission, not arrival.
				t.keys.Get(key, now)
			}
		}
		if limited {
			t.delayed.Add(1)
		}
	}
	t.passed.Add(1)
	return m, nil
}

// limiterFor returns the limiter for m: the only one, or its key's, or the
// overflow limiter. key is "" unless the limiter is the key's own.
func (t *throttle) limiterFor(m *pipeline.Message, now time.Time) (*pace.Pacer, string, error) {
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
	lim, own := t.limiterForKey(key, now)
	if !own {
		return lim, "", nil
	}
	return lim, key, nil
}

// limiterForKey returns key's limiter, creating it on first sight, and
// whether it is the key's own. A new key at a full table takes the place of
// the least recently used limiter if that one holds nothing back; otherwise
// it shares the overflow limiter. A new limiter starts as a copy of the
// overflow limiter while that one still limits, so a key leaving the
// overflow takes its debt along: the limit is never loosened.
func (t *throttle) limiterForKey(key string, now time.Time) (*pace.Pacer, bool) {
	lim, _, ok := t.keys.TryGetOrSet(key, now, func() *pace.Pacer {
		if t.overflow.Full(now) {
			return t.newLim()
		}
		return t.overflow.Clone()
	})
	if ok {
		return lim, true
	}
	n := t.overflowed.Add(1)
	if next := t.nextWarn.Load(); now.UnixNano() >= next &&
		t.nextWarn.CompareAndSwap(next, now.Add(overflowWarnEvery).UnixNano()) {
		t.logger.Warn("throttle: key table full of limiters still limiting; keys that do not fit share one overflow limiter at the per-key limit (raise max_keys)",
			"node", t.node, "max_keys", t.maxKeys, "overflow_messages", n)
	}
	return t.overflow, false
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
		Overflow:     t.overflowed.Load(),
	}
	if t.keys != nil {
		cs := t.keys.Stats()
		s.Keys, s.KeyEvictions, s.KeyExpirations = t.keys.Len(), cs.Evictions, cs.Expirations
	}
	return s
}

// Report returns the stage's counters as figures; the key figures only when
// the throttle has a key.
func (t *throttle) Report() []pipeline.Figure {
	s := t.Stats()
	c := func(name, help string, v uint64) pipeline.Figure {
		return pipeline.Figure{Name: name, Help: help, Kind: pipeline.Counter, Value: float64(v)}
	}
	f := []pipeline.Figure{
		c("admitted", "Messages the throttle let through.", s.Passed),
		c("limited", "Messages the limit held back and then admitted (on_limit: block).", s.Delayed),
		c("dropped", "Messages over the limit dropped (on_limit: drop).", s.Dropped),
		c("dead_lettered", "Messages over the limit dead-lettered (on_limit: dead_letter).", s.DeadLettered),
	}
	if t.keys == nil {
		return f
	}
	return append(f,
		pipeline.Figure{Name: "keys", Help: "Per-key limiters held.", Kind: pipeline.Gauge, Value: float64(s.Keys)},
		c("key_evictions", "Per-key limiters removed, once they held nothing back, to make room for a new key.", s.KeyEvictions),
		c("key_expirations", "Per-key limiters removed after key_ttl idle.", s.KeyExpirations),
		c("overflow", "Messages whose key did not fit max_keys, limited by the shared overflow limiter at the per-key limit.", s.Overflow),
	)
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

// windowSchedule is a sliding window as a pace.Schedule.
type windowSchedule struct{ *window.Limiter }

var _ pace.Schedule = windowSchedule{}

func (w windowSchedule) Clone() pace.Schedule { return windowSchedule{w.Limiter.Clone()} }
