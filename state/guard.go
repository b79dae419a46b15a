package state

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/pipe-dsl/pipe/internal/backoff"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/resilience"
)

// Guard runs store calls under the standard policies: a breaker that
// blocks while the store is down (backpressure, nothing acked, nothing
// failed) and a capped exponential backoff between attempts. A call that
// keeps failing is retried until it succeeds, fails for good (ErrFenced,
// a non-transient error) or ctx ends: a message that needs the store waits
// for it rather than being lost or passed unchecked.
//
// A Guard is safe for concurrent use.
type Guard struct {
	clock   pipeline.Clock
	policy  backoff.Policy
	breaker *resilience.Breaker
	logger  *slog.Logger
	name    string

	calls, failures, retries atomic.Int64
	failing                  atomic.Bool // logged as unreachable, not yet as back
}

// DefaultBackoff is the wait between attempts at an unreachable store.
var DefaultBackoff = backoff.Policy{BaseDelay: 50 * time.Millisecond, MaxDelay: 2 * time.Second,
	Multiplier: 2, Jitter: backoff.EqualJitter}

// NewGuard returns a Guard named name (breaker logs), timing waits on
// clock (nil: pipeline.SystemClock). The breaker opens after 5 consecutive
// failures and probes again after recovery.
func NewGuard(name string, clock pipeline.Clock, logger *slog.Logger, recovery time.Duration) (*Guard, error) {
	if clock == nil {
		clock = pipeline.SystemClock
	}
	if logger == nil {
		logger = slog.Default()
	}
	b, err := resilience.NewBreaker(resilience.BreakerConfig{Name: name, FailureThreshold: 5,
		RecoveryTimeout: recovery, OnOpen: resilience.Block, IsFailure: retryable}, clock, logger)
	if err != nil {
		return nil, err
	}
	return &Guard{clock: clock, policy: DefaultBackoff, breaker: b, logger: logger, name: name}, nil
}

// retryable reports whether a store error may pass on a later attempt.
func retryable(err error) bool {
	switch {
	case err == nil, errors.Is(err, ErrFenced), errors.Is(err, ErrLost), errors.Is(err, ErrNoLimiter),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	}
	return resilience.Transient(err)
}

// Do calls f until it returns nil or an error not worth retrying, or ctx
// ends; it returns f's last error (or ctx's).
func (g *Guard) Do(ctx context.Context, f func(ctx context.Context) error) error {
	for attempt := 1; ; attempt++ {
		done, err := g.breaker.Allow(ctx, true)
		if err != nil {
			return err
		}
		g.calls.Add(1)
		err = f(ctx)
		if ctx.Err() != nil && err != nil {
			done(ctx.Err()) // cancellation does not count against the store
			return err
		}
		done(err)
		if err == nil && g.failing.CompareAndSwap(true, false) {
			g.logger.Info("state store reachable again", "name", g.name)
		}
		if err == nil || !retryable(err) {
			return err
		}
		if g.failing.CompareAndSwap(false, true) {
			g.logger.Warn("state store call failed; retrying until it answers (messages wait, none is acked)", "name", g.name, "err", err)
		}
		g.failures.Add(1)
		g.retries.Add(1)
		t := g.clock.NewTimer(g.policy.Delay(attempt, nil))
		select {
		case <-t.C():
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("state store unreachable: %w (then %w)", err, ctx.Err())
		}
	}
}

// GuardStats counts what a Guard saw.
type GuardStats struct {
	Calls, Failures int64
	Breaker         resilience.BreakerStats
}

// Stats returns the counters; safe to call concurrently with Do.
func (g *Guard) Stats() GuardStats {
	return GuardStats{Calls: g.calls.Load(), Failures: g.failures.Load(), Breaker: g.breaker.Stats()}
}

// Report is the guard's figures for a node's Report.
func (g *Guard) Report() []pipeline.Figure {
	s := g.Stats()
	return []pipeline.Figure{
		{Name: "store_calls", Help: "Calls to the state store, retries included.", Value: float64(s.Calls)},
		{Name: "store_failures", Help: "State store calls that failed and were retried.", Value: float64(s.Failures)},
		{Name: "store_breaker_state", Help: "The state store breaker: 0 closed, 1 half-open, 2 open.",
			Kind: pipeline.Gauge, Value: float64(s.Breaker.State)},
		{Name: "store_breaker_opened", Help: "Times the state store breaker opened.", Value: float64(s.Breaker.Opened)},
	}
}
