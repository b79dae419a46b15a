package resilience

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

func newBreaker(t *testing.T, cfg BreakerConfig, clock pipeline.Clock) *Breaker {
	t.Helper()
	b, err := NewBreaker(cfg, clock, quiet)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var errDown = errors.New("down")

// report admits one call without waiting and reports err.
func report(t *testing.T, b *Breaker, err error) {
	t.Helper()
	done, aerr := b.Allow(context.Background(), false)
	if aerr != nil {
		t.Fatalf("Allow: %v", aerr)
	}
	done(err)
}

func wantState(t *testing.T, b *Breaker, want State) {
	t.Helper()
	if got := b.State(); got != want {
		t.Fatalf("State() = %v, want %v", got, want)
	}
}

func TestBreakerOpensAfterConsecutiveFailures(t *testing.T) {
	clock := pipelinetest.NewFakeClock(epoch)
	b := newBreaker(t, BreakerConfig{FailureThreshold: 3, RecoveryTimeout: 10 * time.Second}, clock)

	report(t, b, errDown)
	report(t, b, errDown)
	report(t, b, nil) // a success resets the count
	report(t, b, errDown)
	report(t, b, &StatusError{Code: 400}) // the peer answered: not a failure
	report(t, b, errDown)
	report(t, b, errDown)
	wantState(t, b, StateClosed)
	report(t, b, errDown)
	wantState(t, b, StateOpen)

	if _, err := b.Allow(context.Background(), false); !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("Allow while open = %v, want ErrCircuitOpen", err)
	}
	clock.Advance(10*time.Second - 1)
	wantState(t, b, StateOpen)
	clock.Advance(1)
	wantState(t, b, StateHalfOpen)
}

func TestBreakerHalfOpenAdmitsLimitedProbesAndClosesAfterSuccesses(t *testing.T) {
	clock := pipelinetest.NewFakeClock(epoch)
	b := newBreaker(t, BreakerConfig{FailureThreshold: 1, RecoveryTimeout: time.Second,
		HalfOpenMaxCalls: 2, SuccessThreshold: 3}, clock)
	report(t, b, errDown)
	clock.Advance(time.Second)

	p1, err1 := b.Allow(context.Background(), false)
	p2, err2 := b.Allow(context.Background(), false)
	_, err3 := b.Allow(context.Background(), false)
	if err1 != nil || err2 != nil || !errors.Is(err3, ErrCircuitOpen) {
		t.Fatalf("three probes: %v, %v, %v; want two admitted, the third rejected", err1, err2, err3)
	}
	p1(nil)
	p3, err := b.Allow(context.Background(), false) // p1's slot is free again
	if err != nil {
		t.Fatal(err)
	}
	p2(nil)
	wantState(t, b, StateHalfOpen)
	p3(nil)
	wantState(t, b, StateClosed)
	if s := b.Stats(); s.Opened != 1 || s.HalfOpened != 1 || s.Closed != 1 || s.Rejected != 1 {
		t.Errorf("Stats() = %+v", s)
	}
}

func TestBreakerReopensOnAFailedProbeAndIgnoresStaleResults(t *testing.T) {
	clock := pipelinetest.NewFakeClock(epoch)
	b := newBreaker(t, BreakerConfig{FailureThreshold: 2, RecoveryTimeout: time.Second, HalfOpenMaxCalls: 2}, clock)
	slow, _ := b.Allow(context.Background(), false) // admitted while closed
	report(t, b, errDown)
	report(t, b, errDown)
	clock.Advance(time.Second)
	probe, _ := b.Allow(context.Background(), false)
	slow(nil) // from an earlier generation: must not close the breaker
	wantState(t, b, StateHalfOpen)
	probe(errDown)
	wantState(t, b, StateOpen)
	clock.Advance(time.Second)
	wantState(t, b, StateHalfOpen)
}

func TestBreakerOpensOnFailureRate(t *testing.T) {
	clock := pipelinetest.NewFakeClock(epoch)
	b := newBreaker(t, BreakerConfig{FailureRate: 0.5, Window: 10 * time.Second, MinCalls: 6}, clock)
	// Old failures slide out of the window.
	for range 5 {
		report(t, b, errDown)
	}
	clock.Advance(11 * time.Second)
	for range 3 {
		report(t, b, nil)
	}
	report(t, b, errDown)
	report(t, b, errDown)
	wantState(t, b, StateClosed) // 2 of 5: below min_calls
	report(t, b, nil)
	report(t, b, errDown) // 3 of 7 = 43%
	wantState(t, b, StateClosed)
	report(t, b, errDown) // 4 of 8 = 50%
	wantState(t, b, StateOpen)
}

func TestBreakerBlockHoldsCallsUntilAProbeIsAdmitted(t *testing.T) {
	clock := pipelinetest.NewFakeClock(epoch)
	b := newBreaker(t, BreakerConfig{FailureThreshold: 1, RecoveryTimeout: 5 * time.Second}, clock)
	report(t, b, errDown)

	admitted := make(chan func(error))
	go func() {
		done, err := b.Allow(context.Background(), true)
		if err != nil {
			t.Error(err)
		}
		admitted <- done
	}()
	clock.WaitTimers(1)
	if d, _ := clock.Next(); d != 5*time.Second {
		t.Errorf("blocked call waits %v, want the 5s left open", d)
	}
	select {
	case <-admitted:
		t.Fatal("admitted while open")
	default:
	}
	clock.Advance(5 * time.Second)
	done := <-admitted
	wantState(t, b, StateHalfOpen)

	// A second blocked call waits for the probe's slot, then finds the
	// breaker closed.
	second := make(chan error)
	waiting := make(chan struct{}, 1)
	b.onWait = func() { waiting <- struct{}{} }
	go func() {
		d, err := b.Allow(context.Background(), true)
		if err == nil {
			d(nil)
		}
		second <- err
	}()
	<-waiting
	done(nil)
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	wantState(t, b, StateClosed)
}

func TestBreakerBlockEndsAtTheHardStop(t *testing.T) {
	clock := pipelinetest.NewFakeClock(epoch)
	b := newBreaker(t, BreakerConfig{FailureThreshold: 1}, clock)
	report(t, b, errDown)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() {
		_, err := b.Allow(ctx, true)
		errc <- err
	}()
	clock.WaitTimers(1)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Allow = %v, want context.Canceled", err)
	}
}

func TestBreakerConcurrentProbesNeverExceedTheLimit(t *testing.T) {
	clock := pipelinetest.NewFakeClock(epoch)
	b := newBreaker(t, BreakerConfig{FailureThreshold: 1, HalfOpenMaxCalls: 3, SuccessThreshold: 1000}, clock)
	report(t, b, errDown)
	clock.Advance(time.Minute)
	var mu sync.Mutex
	inFlight, peak := 0, 0
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			for range 20 {
				done, err := b.Allow(context.Background(), true)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				inFlight++
				peak = max(peak, inFlight)
				mu.Unlock()
				runtime.Gosched()
				mu.Lock()
				inFlight--
				mu.Unlock()
				done(nil)
			}
		})
	}
	wg.Wait()
	if peak > 3 || peak < 1 {
		t.Errorf("peak concurrent probes = %d, want 1..3", peak)
	}
	wantState(t, b, StateClosed)
}

func TestGivenRetryOutsideTheBreaker_ARejectedAttemptIsRetriedAfterRecovery(t *testing.T) {
	clock := pipelinetest.NewFakeClock(epoch)
	b := newBreaker(t, BreakerConfig{FailureThreshold: 1, RecoveryTimeout: time.Second, OnOpen: DeadLetter}, clock)
	r := newRetry(t, RetryConfig{MaxAttempts: 3, BaseDelay: 500 * time.Millisecond}, clock)
	call, calls := failing(errDown) // reaches the peer twice: fails, then succeeds
	m, span := tracedMessage(`{}`)
	done := make(chan struct{})
	var err error
	go func() {
		defer close(done)
		_, err = Compose(call, r, b)(context.Background(), m)
	}()
	waits := drive(clock, done)
	if err != nil || *calls != 2 {
		t.Fatalf("err = %v after %d calls; want success on the second call", err, *calls)
	}
	var kinds []any
	for _, e := range span.Events() {
		if e.name == "retry" {
			kinds = append(kinds, e.attrs["error.kind"])
		}
	}
	if len(kinds) != 2 || kinds[0] != KindError || kinds[1] != KindCircuitOpen || len(waits) != 2 {
		t.Errorf("retried errors %v after waits %v; want [error circuit_open] after 500ms, 1s", kinds, waits)
	}
	if s := b.Stats(); s.Rejected != 1 || s.State != StateClosed {
		t.Errorf("breaker Stats() = %+v", s)
	}
}

func TestGivenOnOpenDeadLetter_RejectedCallsFailWithReasonCircuitOpen(t *testing.T) {
	clock := pipelinetest.NewFakeClock(epoch)
	b := newBreaker(t, BreakerConfig{FailureThreshold: 1, OnOpen: DeadLetter}, clock)
	call, calls := failing(errDown)
	wrapped := b.Wrap(call)
	_, _ = wrapped(context.Background(), pipeline.NewMessage(nil, nil))
	_, err := wrapped(context.Background(), pipeline.NewMessage(nil, nil))
	if pipeline.Reason(err) != pipeline.ReasonCircuitOpen || !errors.Is(err, ErrCircuitOpen) || *calls != 1 {
		t.Errorf("err = %v (reason %s) after %d calls; want circuit_open after 1", err, pipeline.Reason(err), *calls)
	}
}

func TestBreakerLogsEveryStateChange(t *testing.T) {
	var buf bytes.Buffer
	clock := pipelinetest.NewFakeClock(epoch)
	b, err := NewBreaker(BreakerConfig{Name: "p/out", FailureThreshold: 1, RecoveryTimeout: time.Second}, clock,
		slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: dropTime})))
	if err != nil {
		t.Fatal(err)
	}
	report(t, b, errDown)
	clock.Advance(time.Second)
	report(t, b, nil)
	want := `level=WARN msg="circuit breaker state change" breaker=p/out from=closed to=open
level=INFO msg="circuit breaker state change" breaker=p/out from=open to=half-open
level=INFO msg="circuit breaker state change" breaker=p/out from=half-open to=closed
`
	if buf.String() != want {
		t.Errorf("log:\n%s\nwant:\n%s", buf.String(), want)
	}
}

func dropTime(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}
