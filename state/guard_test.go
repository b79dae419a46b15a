package state_test

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
	"github.com/pipe-dsl/pipe/resilience"
	"github.com/pipe-dsl/pipe/state"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var errDown = fmt.Errorf("dial: %w", syscall.ECONNREFUSED)

// guarded runs g.Do(f) on another goroutine, advancing clock through each
// backoff until it returns.
func guarded(t *testing.T, g *state.Guard, clock *pipelinetest.FakeClock, f func(context.Context) error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- g.Do(t.Context(), f) }()
	for {
		select {
		case err := <-done:
			return err
		default:
		}
		if d, ok := clock.Next(); ok {
			clock.Advance(d)
		} else {
			time.Sleep(time.Millisecond) // let Do reach its next timer
		}
	}
}

func TestGuardRetriesAnUnreachableStoreUntilItAnswers(t *testing.T) {
	clock := pipelinetest.NewFakeClock(time.Unix(0, 0))
	g, err := state.NewGuard("store", clock, nil, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	err = guarded(t, g, clock, func(context.Context) error {
		calls++
		if calls <= 7 {
			return errDown
		}
		return nil
	})
	if err != nil || calls != 8 {
		t.Fatalf("Do = %v after %d calls, want nil after 8", err, calls)
	}
	s := g.Stats()
	if s.Failures != 7 || s.Breaker.Opened < 1 || s.Breaker.State != resilience.StateClosed {
		t.Fatalf("stats %+v: want 7 failures, the breaker opened and closed again", s)
	}
}

func TestGuardDoesNotRetryAFencedCommit(t *testing.T) {
	clock := pipelinetest.NewFakeClock(time.Unix(0, 0))
	g, _ := state.NewGuard("store", clock, nil, time.Second)
	calls := 0
	err := g.Do(t.Context(), func(context.Context) error { calls++; return fmt.Errorf("commit: %w", state.ErrFenced) })
	if !errors.Is(err, state.ErrFenced) || calls != 1 {
		t.Fatalf("Do = %v after %d calls, want ErrFenced after 1", err, calls)
	}
}

func TestGuardGivesUpWhenItsContextEnds(t *testing.T) {
	clock := pipelinetest.NewFakeClock(time.Unix(0, 0))
	g, _ := state.NewGuard("store", clock, nil, time.Second)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- g.Do(ctx, func(context.Context) error { return errDown }) }()
	clock.WaitTimers(1) // in its first backoff
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Do = %v, want the store error and context.Canceled", err)
	}
}
