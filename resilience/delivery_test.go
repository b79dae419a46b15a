package resilience

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/internal/backoff"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

func TestGivenAServerThatFailsThenRecovers_EveryMessageIsDeliveredExactlyOnce(t *testing.T) {
	var failures atomic.Int64
	srv := newServer(t, func(int) int {
		if failures.Add(1) <= 5 {
			return 503
		}
		return 0
	})
	clock := pipelinetest.NewFakeClock(epoch)
	defer autoAdvance(clock)()
	retry := newRetry(t, RetryConfig{MaxAttempts: 10, BaseDelay: 100 * time.Millisecond, Jitter: backoff.NoJitter}, clock)
	src, dlq := newIDSource(60), &pipelinetest.Sink{}

	if err := runPipeline(t, context.Background(), clock, src, Sink(srv.sink(), retry), pipeline.NodeOptions{Workers: 4}, dlq); err != nil {
		t.Fatal(err)
	}

	accepted := srv.Accepted()
	acked, nacked := src.results()
	for id := range 60 {
		if accepted[id] != 1 || acked[id] != 1 {
			t.Errorf("message %d: accepted %d times, acked %d times; want 1, 1", id, accepted[id], acked[id])
		}
	}
	if len(nacked) != 0 || len(dlq.Bodies()) != 0 {
		t.Errorf("nacked %v, dead-lettered %d; want none", nacked, len(dlq.Bodies()))
	}
	if got := retry.Stats(); got != (RetryStats{Attempts: 65, Retries: 5, Succeeded: 60}) {
		t.Errorf("Stats() = %+v, want 65 attempts, 5 retries", got)
	}
}

func TestGivenPermanentFailures_MessagesAreDeadLetteredWithTheirAttempts(t *testing.T) {
	srv := newServer(t, func(id int) int {
		switch {
		case id%7 == 0:
			return 503
		case id%11 == 0:
			return 400
		}
		return 0
	})
	clock := pipelinetest.NewFakeClock(epoch)
	defer autoAdvance(clock)()
	retry := newRetry(t, RetryConfig{MaxAttempts: 4, BaseDelay: time.Second, Jitter: backoff.NoJitter}, clock)
	src, dlq := newIDSource(30), &pipelinetest.Sink{}

	// One worker, so each message's failures are timed by its own waits alone.
	if err := runPipeline(t, context.Background(), clock, src, Sink(srv.sink(), retry), pipeline.NodeOptions{Workers: 1}, dlq); err != nil {
		t.Fatal(err)
	}

	dead := deadLetters(t, dlq)
	accepted := srv.Accepted()
	acked, nacked := src.results()
	if len(accepted) != 23 || len(dead) != 7 || len(acked) != 30 || len(nacked) != 0 {
		t.Fatalf("accepted %d, dead-lettered %d, acked %d, nacked %d; want 23, 7, 30, 0",
			len(accepted), len(dead), len(acked), len(nacked))
	}
	for id, d := range dead {
		if accepted[id] != 0 {
			t.Errorf("message %d both delivered and dead-lettered", id)
		}
		switch {
		case id%7 == 0:
			if d.Reason != pipeline.ReasonRetries || d.Attempts != 4 || d.LastFailure.Sub(d.FirstFailure) != 7*time.Second {
				t.Errorf("message %d: reason %s, attempts %d, failures over %v; want retries_exhausted, 4, 7s",
					id, d.Reason, d.Attempts, d.LastFailure.Sub(d.FirstFailure))
			}
		default:
			if d.Reason != pipeline.ReasonSinkError || d.Attempts != 1 {
				t.Errorf("message %d: reason %s, attempts %d; want sink_error, 1", id, d.Reason, d.Attempts)
			}
		}
	}
	if got := retry.Stats(); got != (RetryStats{Attempts: 45, Retries: 15, Exhausted: 5, NotRetried: 2, Succeeded: 23}) {
		t.Errorf("Stats() = %+v", got)
	}
}

func TestRetryWrapsAFallibleStage(t *testing.T) {
	clock := pipelinetest.NewFakeClock(epoch)
	defer autoAdvance(clock)()
	var calls atomic.Int64
	flaky := pipelinetest.ProcessorFunc(func(ctx context.Context, m *pipeline.Message) (*pipeline.Message, error) {
		if calls.Add(1)%3 != 0 {
			return nil, errors.New("lookup service unavailable")
		}
		return m, nil
	})
	retry := newRetry(t, RetryConfig{MaxAttempts: 3, BaseDelay: time.Second}, clock)
	src, out := pipelinetest.NewSource("a", "b", "c", "d"), &pipelinetest.Sink{}
	p := pipeline.New("stage")
	p.Clock = clock
	for _, err := range []error{
		p.AddSource("src", "test", src),
		p.AddStage("lookup", "test", Processor(flaky, retry), pipeline.NodeOptions{}),
		p.AddSink("out", "test", out, pipeline.NodeOptions{}),
		p.Connect("src", "", "lookup"),
		p.Connect("lookup", "", "out"),
		p.Run(context.Background()),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := out.Bodies(); len(got) != 4 || calls.Load() != 12 {
		t.Errorf("delivered %v after %d calls; want 4 messages after 12", got, calls.Load())
	}
}

func TestGivenTheDeadLetterSinkFails_TheMessageIsNackedNotDropped(t *testing.T) {
	srv := newServer(t, func(int) int { return 400 })
	clock := pipelinetest.NewFakeClock(epoch)
	defer autoAdvance(clock)()
	dlqRetry := newRetry(t, RetryConfig{MaxAttempts: 3, BaseDelay: time.Second}, clock)
	broken := &pipelinetest.Sink{Fail: func(*pipeline.Message) error { return errors.New("dead-letter store down") }}
	src := newIDSource(5)

	err := runPipeline(t, context.Background(), clock, src, Sink(srv.sink()), pipeline.NodeOptions{}, Sink(broken, dlqRetry))
	if err != nil {
		t.Fatal(err)
	}
	acked, nacked := src.results()
	if len(acked) != 0 || len(nacked) != 5 {
		t.Errorf("acked %v, nacked %v; want every message nacked", acked, nacked)
	}
	if got := dlqRetry.Stats(); got.Attempts != 15 || got.Exhausted != 5 {
		t.Errorf("dead-letter retry Stats() = %+v, want 15 attempts, 5 exhausted", got)
	}
}
