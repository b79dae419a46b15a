package resilience

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pipe-dsl/pipe/pipeline"
)

// Timeout is a Policy that gives each call a deadline: the call's context
// is cancelled after D, and a call that fails once it was cancelled so
// fails with a TimeoutError (kind timeout, dead-letter reason timeout). A
// call that ignores its context is not interrupted; its result is taken as
// it comes. A zero or negative D means no deadline.
type Timeout struct {
	D time.Duration
	// Clock measures D; nil means pipeline.SystemClock, whose deadline is a
	// real context deadline that clients such as net/http see.
	Clock pipeline.Clock
}

// TimeoutError is the error of a call that overran its Timeout.
type TimeoutError struct {
	After time.Duration
	Err   error
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("timed out after %v: %v", e.After, e.Err)
}

func (e *TimeoutError) Unwrap() error { return e.Err }

// Timeout reports true: a TimeoutError is a net.Error-style timeout.
func (e *TimeoutError) Timeout() bool { return true }

// Is makes errors.Is(err, context.DeadlineExceeded) true.
func (e *TimeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

var errTimedOut = errors.New("timeout policy deadline")

func (t Timeout) Wrap(next Call) Call {
	if t.D <= 0 {
		return next
	}
	return func(ctx context.Context, m *pipeline.Message) (*pipeline.Message, error) {
		cctx, cancel := t.context(ctx)
		defer cancel()
		r, err := next(cctx, m)
		if err != nil && ctx.Err() == nil && cctx.Err() != nil {
			err = pipeline.WithReason(pipeline.ReasonTimeout, &TimeoutError{After: t.D, Err: err})
		}
		return r, err
	}
}

// context returns ctx with t's deadline.
func (t Timeout) context(ctx context.Context) (context.Context, context.CancelFunc) {
	if t.Clock == nil || t.Clock == pipeline.SystemClock {
		return context.WithTimeoutCause(ctx, t.D, errTimedOut)
	}
	cctx, cancel := context.WithCancelCause(ctx)
	timer := t.Clock.NewTimer(t.D)
	done := make(chan struct{})
	go func() {
		select {
		case <-timer.C():
			cancel(errTimedOut)
		case <-done:
		}
	}()
	return cctx, func() {
		timer.Stop()
		close(done)
		cancel(context.Canceled)
	}
}
