package resilience

import (
	"context"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/internal/backoff"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

// reportingSink fails its first writes and has a figure of its own.
type reportingSink struct{ call Call }

func (s reportingSink) Write(ctx context.Context, m *pipeline.Message) error {
	_, err := s.call(ctx, m)
	return err
}

func (reportingSink) Report() []pipeline.Figure {
	return []pipeline.Figure{{Name: "own", Kind: pipeline.Gauge, Value: 1}}
}

// figureValues maps scope/name{label} to each figure's value.
func figureValues(fs []pipeline.Figure) map[string]float64 {
	out := map[string]float64{}
	for _, f := range fs {
		k := f.Scope + "/" + f.Name
		if f.Label != "" {
			k += "{" + f.LabelValue + "}"
		}
		out[k] = f.Value
	}
	return out
}

func TestGivenRetryAndBreakerOnASink_ItsFiguresCountAttemptsByOutcomeAndTransitions(t *testing.T) {
	clock := pipelinetest.NewFakeClock(epoch)
	r := newRetry(t, RetryConfig{MaxAttempts: 3, Jitter: backoff.NoJitter}, clock)
	b := newBreaker(t, BreakerConfig{FailureThreshold: 2, RecoveryTimeout: time.Second, OnOpen: DeadLetter}, clock)
	call, _ := failing(errDown, errDown)
	s := Sink(reportingSink{call}, r, b)

	// When the first message fails twice, the breaker opens and rejects the third attempt.
	if err := s.Write(context.Background(), pipeline.NewMessage([]byte("a"), nil)); pipeline.Reason(err) != pipeline.ReasonRetries {
		t.Fatalf("Write(a) = %v, want retries_exhausted", err)
	}
	// And after the recovery timeout the second message closes it again.
	clock.Advance(time.Second)
	if err := s.Write(context.Background(), pipeline.NewMessage([]byte("b"), nil)); err != nil {
		t.Fatalf("Write(b) = %v", err)
	}

	got := figureValues(s.(pipeline.Reporter).Report())
	want := map[string]float64{
		"/own":               1,
		"retry/attempts{ok}": 1, "retry/attempts{retried}": 2, "retry/attempts{exhausted}": 1,
		"retry/attempts{not_retryable}": 0, "retry/attempts{canceled}": 0,
		"breaker/state": float64(StateClosed), "breaker/rejected": 1,
		"breaker/transitions{open}": 1, "breaker/transitions{half_open}": 1, "breaker/transitions{closed}": 1,
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("figure %s = %v, want %v", k, got[k], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("figures = %v, want the %d above", got, len(want))
	}
}

func TestRetryCountsAnAttemptCanceledByTheHardStop(t *testing.T) {
	r := newRetry(t, RetryConfig{MaxAttempts: 3, BaseDelay: time.Hour, MaxDelay: time.Hour, Jitter: backoff.NoJitter},
		pipelinetest.NewFakeClock(epoch))
	ctx, cancel := context.WithCancel(context.Background())
	call, _ := failing(errDown)
	cancel()
	if _, err := r.Wrap(call)(ctx, pipeline.NewMessage([]byte("a"), nil)); err == nil {
		t.Fatal("Wrap(call) after cancel = nil, want an error")
	}
	got := figureValues(r.Report())
	if got["retry/attempts{canceled}"] != 1 || got["retry/attempts{retried}"] != 0 {
		t.Errorf("figures = %v, want one canceled attempt", got)
	}
}
