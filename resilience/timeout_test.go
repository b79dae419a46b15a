package resilience

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

// blocking is a Call that waits for its context, or returns at once if
// release is closed.
func blocking(release <-chan struct{}) Call {
	return func(ctx context.Context, m *pipeline.Message) (*pipeline.Message, error) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-release:
			return m, nil
		}
	}
}

func TestTimeoutFailsACallThatOverruns(t *testing.T) {
	clock := pipelinetest.NewFakeClock(epoch)
	call := Timeout{D: 2 * time.Second, Clock: clock}.Wrap(blocking(nil))
	errc := make(chan error)
	go func() {
		_, err := call(context.Background(), pipeline.NewMessage(nil, nil))
		errc <- err
	}()
	clock.WaitTimers(1)
	if d, _ := clock.Next(); d != 2*time.Second {
		t.Errorf("deadline in %v, want 2s", d)
	}
	clock.Advance(2 * time.Second)
	err := <-errc
	var te *TimeoutError
	if !errors.As(err, &te) || pipeline.Reason(err) != pipeline.ReasonTimeout {
		t.Fatalf("err = %v, want a TimeoutError with reason timeout", err)
	}
	if kind, _ := Classify(err); kind != KindTimeout {
		t.Errorf("Classify = %s, want timeout", kind)
	}
}

func TestTimeoutLeavesAFastCallAlone(t *testing.T) {
	clock := pipelinetest.NewFakeClock(epoch)
	release := make(chan struct{})
	close(release)
	m := pipeline.NewMessage(nil, nil)
	out, err := Timeout{D: time.Second, Clock: clock}.Wrap(blocking(release))(context.Background(), m)
	if err != nil || out != m || clock.Timers() != 0 {
		t.Errorf("out, err = %v, %v; timers %d; want m, nil, 0", out, err, clock.Timers())
	}
}

func TestTimeoutOnTheSystemClockIsAContextDeadline(t *testing.T) {
	var deadline bool
	call := Timeout{D: time.Hour}.Wrap(func(ctx context.Context, m *pipeline.Message) (*pipeline.Message, error) {
		_, deadline = ctx.Deadline()
		return m, nil
	})
	if _, err := call(context.Background(), pipeline.NewMessage(nil, nil)); err != nil || !deadline {
		t.Errorf("err = %v, deadline set = %v", err, deadline)
	}
}

func TestTimeoutIsNotBlamedForTheHardStop(t *testing.T) {
	clock := pipelinetest.NewFakeClock(epoch)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Timeout{D: time.Second, Clock: clock}.Wrap(blocking(nil))(ctx, pipeline.NewMessage(nil, nil))
	var te *TimeoutError
	if errors.As(err, &te) || !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want plain context.Canceled", err)
	}
}

func TestWrappedSinksAndProcessorsExposeTheirPoliciesAndClose(t *testing.T) {
	r := newRetry(t, RetryConfig{}, nil)
	var noBreaker *Breaker
	inner := &closingSink{}
	s := Sink(inner, r, noBreaker, Timeout{D: time.Second})
	ps := s.(Wrapped).Policies()
	if len(ps) != 2 || ps[0] != Policy(r) {
		t.Errorf("Policies() = %v, want the retry and the timeout", ps)
	}
	if err := s.(pipeline.Closer).Close(context.Background()); err != nil || !inner.closed {
		t.Errorf("Close = %v, inner closed %v", err, inner.closed)
	}
	proc := Processor(pipelinetest.ProcessorFunc(func(_ context.Context, m *pipeline.Message) (*pipeline.Message, error) { return m, nil }))
	if len(proc.(Wrapped).Policies()) != 0 || proc.(pipeline.Closer).Close(context.Background()) != nil {
		t.Error("a processor with no policies should have none and close cleanly")
	}
}

type closingSink struct{ closed bool }

func (s *closingSink) Write(context.Context, *pipeline.Message) error { return nil }
func (s *closingSink) Close(context.Context) error                    { s.closed = true; return nil }
