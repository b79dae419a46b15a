package resilience

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/pipe-dsl/pipe/expr"
	"github.com/pipe-dsl/pipe/internal/backoff"
	"github.com/pipe-dsl/pipe/pipeline"
)

// RetryConfig says how often and how soon a failed call is tried again.
type RetryConfig struct {
	// MaxAttempts bounds the attempts, the first included; 0 means 3.
	MaxAttempts int
	// BaseDelay is the wait after the first failure, MaxDelay caps any
	// wait, and each further failure multiplies the wait by Multiplier
	// (0 means 2), before Jitter.
	BaseDelay, MaxDelay time.Duration
	Multiplier          float64
	Jitter              backoff.Jitter
	// MaxElapsed, if positive, stops retrying once the next attempt would
	// start more than MaxElapsed after the first.
	MaxElapsed time.Duration
	// RetryOn decides which errors are retried; nil means Transient.
	RetryOn func(err error) bool
	// Rand supplies jitter in [0, 1); nil means math/rand/v2.
	Rand func() float64
}

// RetryStats counts what a Retry did.
type RetryStats struct {
	// Attempts counts every call made, first attempts included.
	Attempts int64
	// Retries counts attempts after a failure.
	Retries int64
	// Exhausted counts messages that failed every attempt allowed.
	Exhausted int64
	// NotRetried counts failures RetryOn rejected.
	NotRetried int64
	// Succeeded counts attempts that worked (or dropped or partly refused
	// on purpose); Canceled those whose run stopped under them.
	Succeeded, Canceled int64
}

// Retry is a Policy that calls again after a transient failure, waiting a
// capped exponential backoff on the clock between attempts.
//
// A message waiting for its next attempt holds the worker that called it
// and nothing else: with W workers, at most W messages are in backoff while
// the others keep flowing, and a message that is retried may be delivered
// after messages that arrived later. The wait ends early when ctx is
// cancelled (the hard stop); the call then fails with ctx's error and the
// runtime nacks the message.
//
// Each failed attempt but the last is recorded on the message
// (Message.RecordAttempt; the runtime records the last when it
// dead-letters) and as a "retry" event on the message's span. A message
// that fails every allowed attempt fails with reason retries_exhausted; one
// whose error RetryOn rejects fails with that error unchanged.
//
// A Retry is safe for concurrent use.
type Retry struct {
	cfg    RetryConfig
	policy backoff.Policy
	clock  pipeline.Clock
	logger *slog.Logger

	attempts, retries, exhausted, notRetried atomic.Int64
	succeeded, canceled                      atomic.Int64
}

// NewRetry returns a Retry with cfg, timing waits on clock (nil means
// pipeline.SystemClock). It fails if cfg's delays or multiplier are
// invalid.
func NewRetry(cfg RetryConfig, clock pipeline.Clock, logger *slog.Logger) (*Retry, error) {
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = 3
	}
	p := backoff.Policy{
		BaseDelay: cfg.BaseDelay, MaxDelay: cfg.MaxDelay, Multiplier: cfg.Multiplier,
		Jitter: cfg.Jitter, MaxAttempts: cfg.MaxAttempts, MaxElapsed: cfg.MaxElapsed,
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("retry: %w", err)
	}
	if cfg.MaxAttempts < 1 {
		return nil, fmt.Errorf("retry: max_attempts %d is below 1", cfg.MaxAttempts)
	}
	if cfg.RetryOn == nil {
		cfg.RetryOn = Transient
	}
	if clock == nil {
		clock = pipeline.SystemClock
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Retry{cfg: cfg, policy: p, clock: clock, logger: logger}, nil
}

// RetryOnExpr returns a RetryOn function that evaluates pred on each
// error's Classify kind and status and its message. An evaluation error
// counts as "do not retry" and is logged.
func RetryOnExpr(pred *expr.ErrorPredicate, logger *slog.Logger) func(error) bool {
	if logger == nil {
		logger = slog.Default()
	}
	return func(err error) bool {
		kind, status := Classify(err)
		ok, eerr := pred.Match(kind, status, err.Error())
		if eerr != nil {
			logger.Warn("retry_on failed; not retrying", "err", eerr)
			return false
		}
		return ok
	}
}

// Stats returns a snapshot of the counters.
func (r *Retry) Stats() RetryStats {
	return RetryStats{
		Attempts: r.attempts.Load(), Retries: r.retries.Load(),
		Exhausted: r.exhausted.Load(), NotRetried: r.notRetried.Load(),
		Succeeded: r.succeeded.Load(), Canceled: r.canceled.Load(),
	}
}

func (r *Retry) Wrap(next Call) Call {
	return func(ctx context.Context, m *pipeline.Message) (*pipeline.Message, error) {
		span := trace.SpanFromContext(m.Context())
		start := r.clock.Now()
		for attempt := 1; ; attempt++ {
			r.attempts.Add(1)
			if attempt > 1 {
				r.retries.Add(1)
			}
			out, err := next(ctx, m)
			switch {
			case err == nil || isDrop(err) || isPartial(err):
				r.succeeded.Add(1)
				return out, err
			case ctx.Err() != nil:
				r.canceled.Add(1)
				return out, err
			}
			now := r.clock.Now()
			kind, status := Classify(err)
			if !r.cfg.RetryOn(err) {
				r.notRetried.Add(1)
				r.event(span, attempt, kind, status, err, 0, "not_retryable")
				return out, err
			}
			delay, ok := r.next(attempt, now.Sub(start), err)
			if !ok {
				r.exhausted.Add(1)
				r.event(span, attempt, kind, status, err, 0, "exhausted")
				return out, pipeline.WithReason(pipeline.ReasonRetries,
					fmt.Errorf("gave up after %d attempts: %w", attempt, err))
			}
			m.RecordAttempt(now)
			r.event(span, attempt, kind, status, err, delay, "retry")
			if err := r.sleep(ctx, delay); err != nil {
				r.canceled.Add(1)
				return nil, err
			}
		}
	}
}

// next returns the wait before the attempt after attempts failed ones, the
// first elapsed ago, and whether to make it: the backoff delay, or longer if
// err asks for it (a RetryDelay method, as StatusError has) up to MaxDelay,
// as long as the attempt would start within MaxElapsed.
func (r *Retry) next(attempts int, elapsed time.Duration, err error) (time.Duration, bool) {
	delay, ok := r.policy.Next(attempts, elapsed, r.cfg.Rand)
	var rd retryDelayer
	if !ok || !errors.As(err, &rd) || rd.RetryDelay() <= delay {
		return delay, ok
	}
	delay = rd.RetryDelay()
	if r.cfg.MaxDelay > 0 {
		delay = min(delay, r.cfg.MaxDelay)
	}
	if r.cfg.MaxElapsed > 0 && elapsed+delay > r.cfg.MaxElapsed {
		return 0, false
	}
	return delay, true
}

// sleep waits d on the clock or until ctx is done.
func (r *Retry) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := r.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("retry backoff interrupted: %w", ctx.Err())
	}
}

func (r *Retry) event(span trace.Span, attempt int, kind string, status int, err error, delay time.Duration, outcome string) {
	if !span.IsRecording() {
		return
	}
	attrs := []attribute.KeyValue{
		attribute.Int("retry.attempt", attempt),
		attribute.String("retry.outcome", outcome),
		attribute.String("error.kind", kind),
		attribute.String("error.message", err.Error()),
	}
	if status != 0 {
		attrs = append(attrs, attribute.Int("error.status", status))
	}
	if outcome == "retry" {
		attrs = append(attrs, attribute.Int64("retry.delay_ms", delay.Milliseconds()))
	}
	span.AddEvent("retry", trace.WithAttributes(attrs...))
}
