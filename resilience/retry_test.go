package resilience

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/expr"
	"github.com/pipe-dsl/pipe/internal/backoff"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

func newRetry(t *testing.T, cfg RetryConfig, clock pipeline.Clock) *Retry {
	t.Helper()
	r, err := NewRetry(cfg, clock, quiet)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRetryWaitsTheConfiguredSchedule(t *testing.T) {
	clock := pipelinetest.NewFakeClock(epoch)
	r := newRetry(t, RetryConfig{MaxAttempts: 6, BaseDelay: 100 * time.Millisecond,
		MaxDelay: time.Second, Multiplier: 3, Jitter: backoff.NoJitter}, clock)
	s503 := &StatusError{Code: 503}
	call, calls := failing(s503, s503, s503, s503, s503, s503)
	m, span := tracedMessage(`{}`)

	done := make(chan struct{})
	var err error
	go func() {
		defer close(done)
		_, err = r.Wrap(call)(context.Background(), m)
	}()
	waits := drive(clock, done)

	want := []time.Duration{100 * time.Millisecond, 300 * time.Millisecond, 900 * time.Millisecond, time.Second, time.Second}
	if !slices.Equal(waits, want) {
		t.Errorf("waits = %v, want %v", waits, want)
	}
	if *calls != 6 {
		t.Errorf("calls = %d, want 6", *calls)
	}
	if got := pipeline.Reason(err); got != pipeline.ReasonRetries {
		t.Errorf("Reason(err) = %q, want %q (err %v)", got, pipeline.ReasonRetries, err)
	}
	if kind, status := Classify(err); kind != KindStatus || status != 503 {
		t.Errorf("Classify(err) = %s, %d; want status, 503", kind, status)
	}
	if got := r.Stats(); got != (RetryStats{Attempts: 6, Retries: 5, Exhausted: 1}) {
		t.Errorf("Stats() = %+v", got)
	}
	ev := span.Events()
	if len(ev) != 6 || ev[0].attrs["retry.delay_ms"] != int64(100) || ev[0].attrs["retry.attempt"] != int64(1) ||
		ev[0].attrs["error.status"] != int64(503) || ev[5].attrs["retry.outcome"] != "exhausted" {
		t.Errorf("span events = %+v", ev)
	}
}

func TestRetryJitterStaysWithinTheDelay(t *testing.T) {
	for _, tc := range []struct {
		jitter   backoff.Jitter
		rnd      float64
		wantWait time.Duration
	}{
		{backoff.FullJitter, 0.25, 250 * time.Millisecond},
		{backoff.EqualJitter, 0.5, 750 * time.Millisecond},
	} {
		clock := pipelinetest.NewFakeClock(epoch)
		r := newRetry(t, RetryConfig{MaxAttempts: 2, BaseDelay: time.Second, Jitter: tc.jitter,
			Rand: func() float64 { return tc.rnd }}, clock)
		call, _ := failing(errors.New("flaky"))
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = r.Wrap(call)(context.Background(), pipeline.NewMessage(nil, nil))
		}()
		if waits := drive(clock, done); !slices.Equal(waits, []time.Duration{tc.wantWait}) {
			t.Errorf("%v jitter: waits = %v, want [%v]", tc.jitter, waits, tc.wantWait)
		}
	}
}

func TestRetryMaxElapsedStopsEarly(t *testing.T) {
	clock := pipelinetest.NewFakeClock(epoch)
	r := newRetry(t, RetryConfig{MaxAttempts: 100, BaseDelay: time.Second, Multiplier: 1,
		MaxElapsed: 2500 * time.Millisecond}, clock)
	call, calls := failing(slices.Repeat([]error{errors.New("down")}, 100)...)
	done := make(chan struct{})
	var err error
	go func() {
		defer close(done)
		_, err = r.Wrap(call)(context.Background(), pipeline.NewMessage(nil, nil))
	}()
	drive(clock, done)
	if *calls != 3 || pipeline.Reason(err) != pipeline.ReasonRetries {
		t.Errorf("calls = %d, err = %v; want 3 calls, retries_exhausted", *calls, err)
	}
}

func TestRetryDoesNotRetryClientErrors(t *testing.T) {
	for _, tc := range []struct {
		err       error
		wantCalls int
	}{
		{&StatusError{Code: 400}, 1},
		{&StatusError{Code: 404}, 1},
		{pipeline.WithReason(pipeline.ReasonExpression, errors.New("no such key")), 1},
		{&StatusError{Code: 408}, 2},
		{&StatusError{Code: 429}, 2},
		{&StatusError{Code: 500}, 2},
		{fmt.Errorf("post: %w", context.DeadlineExceeded), 2},
	} {
		clock := pipelinetest.NewFakeClock(epoch)
		r := newRetry(t, RetryConfig{MaxAttempts: 5}, clock)
		call, calls := failing(tc.err)
		out, err := r.Wrap(call)(context.Background(), pipeline.NewMessage(nil, nil))
		if *calls != tc.wantCalls {
			t.Errorf("%v: calls = %d, want %d", tc.err, *calls, tc.wantCalls)
		}
		if tc.wantCalls == 1 && !errors.Is(err, tc.err) {
			t.Errorf("%v: err = %v, want it unchanged", tc.err, err)
		}
		if tc.wantCalls == 2 && (err != nil || out == nil) {
			t.Errorf("%v: second attempt: out, err = %v, %v", tc.err, out, err)
		}
	}
}

func TestRetryOnExpressionOverridesTheDefault(t *testing.T) {
	pred, err := expr.CompileErrorPredicate(`error.status == 404 || error.message.contains("busy")`)
	if err != nil {
		t.Fatal(err)
	}
	r := newRetry(t, RetryConfig{MaxAttempts: 3, RetryOn: RetryOnExpr(pred, nil)}, pipelinetest.NewFakeClock(epoch))
	call, calls := failing(&StatusError{Code: 404}, errors.New("server busy"))
	if _, err := r.Wrap(call)(context.Background(), pipeline.NewMessage(nil, nil)); err != nil || *calls != 3 {
		t.Errorf("err = %v, calls = %d; want nil, 3", err, *calls)
	}
	call, calls = failing(&StatusError{Code: 503})
	if _, err := r.Wrap(call)(context.Background(), pipeline.NewMessage(nil, nil)); err == nil || *calls != 1 {
		t.Errorf("503: err = %v, calls = %d; want the error after 1 call", err, *calls)
	}
}

func TestDefaultRetryOnMatchesTransient(t *testing.T) {
	pred, err := expr.CompileErrorPredicate(DefaultRetryOn)
	if err != nil {
		t.Fatal(err)
	}
	kinds := []string{KindTimeout, KindConnection, KindCircuitOpen, KindCanceled, KindInvalid, KindError}
	for _, kind := range append(kinds, KindStatus) {
		for _, status := range []int{0, 400, 404, 408, 409, 429, 500, 502, 503} {
			got, err := pred.Match(kind, status, "x")
			if err != nil {
				t.Fatal(err)
			}
			if want := transient(kind, status); got != want {
				t.Errorf("DefaultRetryOn(%s, %d) = %v, transient = %v", kind, status, got, want)
			}
		}
	}
}

func TestRetryBackoffEndsAtTheHardStop(t *testing.T) {
	clock := pipelinetest.NewFakeClock(epoch)
	r := newRetry(t, RetryConfig{MaxAttempts: 5, BaseDelay: time.Hour}, clock)
	call, calls := failing(errors.New("down"), errors.New("down"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := r.Wrap(call)(ctx, pipeline.NewMessage(nil, nil))
		done <- err
	}()
	clock.WaitTimers(1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if *calls != 1 || clock.Timers() != 0 {
		t.Errorf("calls = %d, timers = %d; want 1, 0", *calls, clock.Timers())
	}
}

func TestNewRetryRejectsBadConfig(t *testing.T) {
	for _, cfg := range []RetryConfig{
		{MaxAttempts: -1},
		{BaseDelay: -time.Second},
		{Multiplier: 0.5},
		{BaseDelay: time.Second, MaxDelay: time.Millisecond},
	} {
		if _, err := NewRetry(cfg, nil, nil); err == nil {
			t.Errorf("NewRetry(%+v) = nil error", cfg)
		}
	}
}

func TestAnIntentionalDropIsNeitherRetriedNorABreakerFailure(t *testing.T) {
	clock := pipelinetest.NewFakeClock(epoch)
	r := newRetry(t, RetryConfig{MaxAttempts: 3}, clock)
	b := newBreaker(t, BreakerConfig{FailureThreshold: 1}, clock)
	call, calls := failing(pipeline.Drop("filtered"), pipeline.Drop("filtered"))
	_, err := Compose(call, r, b)(context.Background(), pipeline.NewMessage(nil, nil))
	var drop *pipeline.DropError
	if !errors.As(err, &drop) || *calls != 1 || b.State() != StateClosed {
		t.Errorf("err = %v after %d calls, breaker %v; want the drop after 1 call, closed", err, *calls, b.State())
	}
}

func TestRetryHonoursRetryAfterUpToMaxDelay(t *testing.T) {
	clock := pipelinetest.NewFakeClock(epoch)
	r := newRetry(t, RetryConfig{MaxAttempts: 4, BaseDelay: 100 * time.Millisecond, MaxDelay: 5 * time.Second,
		Jitter: backoff.NoJitter}, clock)
	call, _ := failing(
		&StatusError{Code: 429, RetryAfter: 2 * time.Second},
		&StatusError{Code: 429, RetryAfter: time.Minute},
		&StatusError{Code: 503, RetryAfter: time.Millisecond},
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = r.Wrap(call)(context.Background(), pipeline.NewMessage(nil, nil))
	}()
	want := []time.Duration{2 * time.Second, 5 * time.Second, 400 * time.Millisecond}
	if waits := drive(clock, done); !slices.Equal(waits, want) {
		t.Errorf("waits = %v, want %v", waits, want)
	}
}

func TestRetryAfterBeyondMaxElapsedGivesUp(t *testing.T) {
	r := newRetry(t, RetryConfig{MaxAttempts: 5, BaseDelay: time.Second, MaxElapsed: 10 * time.Second},
		pipelinetest.NewFakeClock(epoch))
	call, calls := failing(&StatusError{Code: 503, RetryAfter: time.Minute})
	_, err := r.Wrap(call)(context.Background(), pipeline.NewMessage(nil, nil))
	if pipeline.Reason(err) != pipeline.ReasonRetries || *calls != 1 {
		t.Errorf("err = %v after %d calls; want retries_exhausted after 1", err, *calls)
	}
}
