package resilience

import (
	"errors"
	"testing"

	"github.com/sony/gobreaker/v2"
)

// TestWhyNotGobreaker records why Breaker is not built on gobreaker v2's
// TwoStepCircuitBreaker: its MaxRequests is both the number of half-open
// probes admitted and the number of successes that close it, so
// half_open_max_calls: 1 with success_threshold: 3 cannot be expressed; and
// it reads time.Now, so a fake clock cannot drive recovery_timeout (here a
// 1ns Timeout stands in).
func TestWhyNotGobreaker(t *testing.T) {
	trip := func(max uint32) *gobreaker.TwoStepCircuitBreaker[any] {
		cb := gobreaker.NewTwoStepCircuitBreaker[any](gobreaker.Settings{
			MaxRequests: max, Timeout: 1, // 1ns: half-open at the next call
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 1 },
		})
		done, err := cb.Allow()
		if err != nil {
			t.Fatal(err)
		}
		done(errors.New("down"))
		for cb.State() != gobreaker.StateHalfOpen {
		}
		return cb
	}

	// One probe at a time: the first success closes it at once.
	cb := trip(1)
	done, _ := cb.Allow()
	done(nil)
	if cb.State() != gobreaker.StateClosed {
		t.Fatalf("MaxRequests 1: state after one success = %v", cb.State())
	}

	// Three successes to close: three probes are let through together.
	cb = trip(3)
	admitted := 0
	for range 3 {
		if _, err := cb.Allow(); err == nil {
			admitted++
		}
	}
	if admitted != 3 {
		t.Fatalf("MaxRequests 3: admitted %d concurrent probes", admitted)
	}
}
