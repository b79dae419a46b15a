package resilience_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
	"github.com/pipe-dsl/pipe/resilience"
)

// The order of policies decides what the breaker counts. With the retry
// outside (the default), every attempt passes the breaker, so one message
// failing three attempts opens a breaker whose threshold is 3. With the
// breaker outside, it sees one failure per message, after its retries.
func ExampleCompose() {
	quiet := slog.New(slog.DiscardHandler)
	down := func(context.Context, *pipeline.Message) (*pipeline.Message, error) {
		return nil, errors.New("connection reset")
	}
	for _, retryOutside := range []bool{true, false} {
		clock := pipelinetest.NewFakeClock(time.Unix(0, 0))
		retry, _ := resilience.NewRetry(resilience.RetryConfig{MaxAttempts: 3}, clock, quiet)
		breaker, _ := resilience.NewBreaker(resilience.BreakerConfig{FailureThreshold: 3, OnOpen: resilience.DeadLetter}, clock, quiet)
		call := resilience.Compose(down, breaker, retry)
		if retryOutside {
			call = resilience.Compose(down, retry, breaker)
		}
		_, err := call(context.Background(), pipeline.NewMessage(nil, nil))
		fmt.Printf("retry outside %v: %s after %d attempts, breaker %v\n",
			retryOutside, pipeline.Reason(err), retry.Stats().Attempts, breaker.State())
	}
	// Output:
	// retry outside true: retries_exhausted after 3 attempts, breaker open
	// retry outside false: retries_exhausted after 3 attempts, breaker closed
}

// A sink returns a *StatusError for a failure status so retry_on and the
// breaker can tell a 503 from a 400.
func ExampleClassify() {
	for _, err := range []error{
		&resilience.StatusError{Code: 503},
		fmt.Errorf("post: %w", &resilience.StatusError{Code: 404}),
		context.DeadlineExceeded,
		resilience.WithKind(resilience.KindConnection, errors.New("not leader")),
	} {
		kind, status := resilience.Classify(err)
		fmt.Println(kind, status, resilience.Transient(err))
	}
	// Output:
	// status 503 true
	// status 404 false
	// timeout 0 true
	// connection 0 true
}
