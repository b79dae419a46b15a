package resilience

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/pipe-dsl/pipe/pipeline"
)

// State is a circuit breaker's state.
type State int32

const (
	// StateClosed lets every call through and counts failures.
	StateClosed State = iota
	// StateHalfOpen lets a few probe calls through to test recovery.
	StateHalfOpen
	// StateOpen rejects (or holds) every call until the recovery timeout.
	StateOpen
)

var stateNames = [...]string{"closed", "half-open", "open"}

func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// OnOpen is what a Breaker does with a call while it is open.
type OnOpen int

const (
	// Block holds the call until the breaker admits it as a half-open
	// probe: backpressure, with nothing acked or failed meanwhile.
	Block OnOpen = iota
	// DeadLetter fails the call at once with ErrCircuitOpen, dead-letter
	// reason circuit_open.
	DeadLetter
)

// BreakerConfig says when a Breaker opens and how it recovers.
type BreakerConfig struct {
	// Name labels logs and span events.
	Name string
	// FailureThreshold opens the breaker after that many consecutive
	// failures; 0 turns the rule off, unless FailureRate is 0 too, which
	// means 5.
	FailureThreshold int
	// FailureRate, in (0, 1], opens the breaker when at least that
	// fraction of the calls in the last Window failed, once there were at
	// least MinCalls of them (0 means 10). 0 turns the rule off. The window
	// slides in steps of Window/10; Window 0 means one minute.
	FailureRate float64
	Window      time.Duration
	MinCalls    int
	// RecoveryTimeout is how long the breaker stays open; 0 means 30s.
	RecoveryTimeout time.Duration
	// HalfOpenMaxCalls bounds the concurrent probes while half-open; 0
	// means 1.
	HalfOpenMaxCalls int
	// SuccessThreshold is how many probes must succeed to close the
	// breaker; 0 means 1. Any failed probe opens it again.
	SuccessThreshold int
	OnOpen           OnOpen
	// IsFailure decides which errors count as failures; nil means
	// Transient. Other errors count as successes (the peer answered),
	// except cancellation, which does not count at all.
	IsFailure func(error) bool
}

// BreakerStats counts a Breaker's transitions and rejections.
type BreakerStats struct {
	State                      State
	Opened, HalfOpened, Closed int64
	// Rejected counts calls failed with ErrCircuitOpen (OnOpen DeadLetter).
	Rejected int64
	// Blocked counts calls that waited while the breaker was open.
	Blocked int64
}

// Breaker is a circuit breaker Policy with the states closed, open and
// half-open, driven by an injected clock (it never reads time.Now). It is
// safe for concurrent use.
//
// Closed, it counts consecutive failures and the failure rate; when either
// rule trips it opens. Open, it rejects or holds calls (OnOpen) for
// RecoveryTimeout, then turns half-open and admits at most HalfOpenMaxCalls
// probes at a time: SuccessThreshold successes close it, one failure opens
// it again. Results of calls admitted before the last transition are
// ignored.
type Breaker struct {
	cfg    BreakerConfig
	clock  pipeline.Clock
	logger *slog.Logger

	mu          sync.Mutex
	state       State
	gen         uint64
	consecutive int
	window      rateWindow
	openUntil   time.Time
	probes      int
	successes   int
	changed     chan struct{} // closed and replaced when a call may now be admitted

	opened, halfOpened, closed, rejected, blocked atomic.Int64

	onWait func() // test hook: called as a blocked call starts waiting
}

// NewBreaker returns a closed Breaker. clock nil means
// pipeline.SystemClock, logger nil slog.Default().
func NewBreaker(cfg BreakerConfig, clock pipeline.Clock, logger *slog.Logger) (*Breaker, error) {
	if cfg.FailureThreshold == 0 && cfg.FailureRate == 0 {
		cfg.FailureThreshold = 5
	}
	switch {
	case cfg.FailureThreshold < 0:
		return nil, fmt.Errorf("breaker: failure_threshold %d is negative", cfg.FailureThreshold)
	case cfg.FailureRate < 0 || cfg.FailureRate > 1:
		return nil, fmt.Errorf("breaker: failure_rate %v is not in [0, 1]", cfg.FailureRate)
	case cfg.Window < 0 || cfg.RecoveryTimeout < 0:
		return nil, fmt.Errorf("breaker: negative duration")
	case cfg.MinCalls < 0 || cfg.HalfOpenMaxCalls < 0 || cfg.SuccessThreshold < 0:
		return nil, fmt.Errorf("breaker: negative count")
	}
	if cfg.Window == 0 {
		cfg.Window = time.Minute
	}
	if cfg.MinCalls == 0 {
		cfg.MinCalls = 10
	}
	if cfg.RecoveryTimeout == 0 {
		cfg.RecoveryTimeout = 30 * time.Second
	}
	cfg.HalfOpenMaxCalls = max(cfg.HalfOpenMaxCalls, 1)
	cfg.SuccessThreshold = max(cfg.SuccessThreshold, 1)
	if cfg.IsFailure == nil {
		cfg.IsFailure = Transient
	}
	if clock == nil {
		clock = pipeline.SystemClock
	}
	if logger == nil {
		logger = slog.Default()
	}
	b := &Breaker{cfg: cfg, clock: clock, logger: logger, changed: make(chan struct{})}
	b.window.init(cfg.Window)
	return b, nil
}

// State returns the current state, turning open into half-open once the
// recovery timeout has passed.
func (b *Breaker) State() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advance(b.clock.Now())
	return b.state
}

// Stats returns a snapshot of the counters and the current state.
func (b *Breaker) Stats() BreakerStats {
	return BreakerStats{
		State: b.State(), Opened: b.opened.Load(), HalfOpened: b.halfOpened.Load(),
		Closed: b.closed.Load(), Rejected: b.rejected.Load(), Blocked: b.blocked.Load(),
	}
}

// Allow asks to make a call. With wait false it returns ErrCircuitOpen at
// once when the breaker is open or has no free probe slot; with wait true
// it blocks until the call is admitted or ctx is done (then it returns
// ctx's error). An admitted call must report its outcome with done exactly
// once.
func (b *Breaker) Allow(ctx context.Context, wait bool) (done func(err error), err error) {
	t, err := b.allow(ctx, wait, nil)
	if err != nil {
		return nil, err
	}
	return func(err error) { b.done(t, err) }, nil
}

// ticket is one admitted call.
type ticket struct {
	gen   uint64
	probe bool
}

func (b *Breaker) allow(ctx context.Context, wait bool, span trace.Span) (ticket, error) {
	waited := false
	for {
		b.mu.Lock()
		now := b.clock.Now()
		b.advance(now)
		var delay time.Duration
		switch b.state {
		case StateClosed:
			t := ticket{gen: b.gen}
			b.mu.Unlock()
			return t, nil
		case StateHalfOpen:
			if b.probes < b.cfg.HalfOpenMaxCalls {
				b.probes++
				t := ticket{gen: b.gen, probe: true}
				b.mu.Unlock()
				return t, nil
			}
		case StateOpen:
			delay = b.openUntil.Sub(now)
		}
		changed := b.changed
		b.mu.Unlock()
		if !wait {
			b.rejected.Add(1)
			return ticket{}, fmt.Errorf("%s: %w", b.name(), ErrCircuitOpen)
		}
		if !waited {
			waited = true
			b.blocked.Add(1)
			if span != nil && span.IsRecording() {
				span.AddEvent("breaker.wait", trace.WithAttributes(attribute.String("breaker.name", b.cfg.Name)))
			}
		}
		if b.onWait != nil {
			b.onWait()
		}
		if err := b.wait(ctx, changed, delay); err != nil {
			return ticket{}, err
		}
	}
}

// wait blocks until changed is closed, delay has passed (if positive) or
// ctx is done.
func (b *Breaker) wait(ctx context.Context, changed <-chan struct{}, delay time.Duration) error {
	var timeout <-chan time.Time
	if delay > 0 {
		t := b.clock.NewTimer(delay)
		defer t.Stop()
		timeout = t.C()
	}
	select {
	case <-changed:
	case <-timeout:
	case <-ctx.Done():
		return fmt.Errorf("waiting for open circuit: %w", ctx.Err())
	}
	return nil
}

// done records the outcome of an admitted call and returns the transition
// it caused, if any.
func (b *Breaker) done(t ticket, err error) (from, to State) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clock.Now()
	b.advance(now)
	from = b.state
	if t.gen != b.gen {
		return from, from
	}
	if isDrop(err) || isPartial(err) {
		err = nil // the call worked: it dropped or refused on purpose
	}
	kind, _ := Classify(err)
	excluded := kind == KindCanceled
	failure := err != nil && !excluded && b.cfg.IsFailure(err)
	switch b.state {
	case StateClosed:
		if excluded {
			break
		}
		b.window.add(now, failure)
		if !failure {
			b.consecutive = 0
			break
		}
		b.consecutive++
		if b.cfg.FailureThreshold > 0 && b.consecutive >= b.cfg.FailureThreshold || b.rateTripped(now) {
			b.setState(StateOpen, now)
		}
	case StateHalfOpen:
		b.probes--
		switch {
		case failure:
			b.setState(StateOpen, now)
		case !excluded:
			b.successes++
			if b.successes >= b.cfg.SuccessThreshold {
				b.setState(StateClosed, now)
			}
		}
		b.notify() // a probe slot is free
	}
	return from, b.state
}

func (b *Breaker) rateTripped(now time.Time) bool {
	if b.cfg.FailureRate <= 0 {
		return false
	}
	calls, failures := b.window.sum(now)
	return calls >= b.cfg.MinCalls && float64(failures) >= b.cfg.FailureRate*float64(calls)
}

// advance turns open into half-open once the recovery timeout passed; b.mu
// must be held.
func (b *Breaker) advance(now time.Time) {
	if b.state == StateOpen && !now.Before(b.openUntil) {
		b.setState(StateHalfOpen, now)
	}
}

// setState moves to s in a new generation; b.mu must be held.
func (b *Breaker) setState(s State, now time.Time) {
	from := b.state
	b.state = s
	b.gen++
	b.consecutive, b.probes, b.successes = 0, 0, 0
	switch s {
	case StateOpen:
		b.openUntil = now.Add(b.cfg.RecoveryTimeout)
		b.opened.Add(1)
	case StateHalfOpen:
		b.halfOpened.Add(1)
	case StateClosed:
		b.window.reset()
		b.closed.Add(1)
	}
	level := slog.LevelInfo
	if s == StateOpen {
		level = slog.LevelWarn
	}
	b.logger.Log(context.Background(), level, "circuit breaker state change",
		"breaker", b.cfg.Name, "from", from.String(), "to", s.String())
	b.notify()
}

func (b *Breaker) notify() {
	close(b.changed)
	b.changed = make(chan struct{})
}

func (b *Breaker) name() string {
	if b.cfg.Name == "" {
		return "breaker"
	}
	return "breaker " + b.cfg.Name
}

func (b *Breaker) Wrap(next Call) Call {
	wait := b.cfg.OnOpen == Block
	return func(ctx context.Context, m *pipeline.Message) (*pipeline.Message, error) {
		span := trace.SpanFromContext(m.Context())
		t, err := b.allow(ctx, wait, span)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			return nil, pipeline.WithReason(pipeline.ReasonCircuitOpen, err)
		}
		out, err := next(ctx, m)
		if from, to := b.done(t, err); from != to && span.IsRecording() {
			span.AddEvent("breaker.state_change", trace.WithAttributes(
				attribute.String("breaker.name", b.cfg.Name),
				attribute.String("breaker.from", from.String()),
				attribute.String("breaker.to", to.String())))
		}
		return out, err
	}
}
