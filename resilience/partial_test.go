package resilience

import (
	"context"
	"errors"
	"testing"

	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

// A batch the sink wrote in part must not be written again: that would
// duplicate the accepted members. And the sink is healthy.
func TestABatchErrorIsNeverRetriedAndDoesNotTripTheBreaker(t *testing.T) {
	clock := pipelinetest.NewFakeClock(epoch)
	retry := newRetry(t, RetryConfig{MaxAttempts: 5, RetryOn: func(error) bool { return true }}, clock)
	breaker := newBreaker(t, BreakerConfig{FailureThreshold: 1}, clock)
	partial := &pipeline.BatchError{Errs: []error{nil, errors.New("constraint")}}
	calls := 0
	call := retry.Wrap(breaker.Wrap(func(context.Context, *pipeline.Message) (*pipeline.Message, error) {
		calls++
		return nil, partial
	}))
	for range 3 {
		if _, err := call(context.Background(), pipeline.NewMessage(nil, nil)); !errors.Is(err, partial) {
			t.Fatalf("call = %v, want the BatchError unchanged", err)
		}
	}
	if calls != 3 {
		t.Errorf("the sink was called %d times for 3 messages, want 3: no retries", calls)
	}
	if s := breaker.State(); s != StateClosed {
		t.Errorf("breaker %v after 3 partial writes, want closed", s)
	}
}
