package resilience

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/internal/backoff"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

// flakyDecider answers like a server with random failures and outages,
// reproducibly for a seed.
func flakyDecider(seed uint64) func(int) int {
	var mu sync.Mutex
	rnd := rand.New(rand.NewPCG(seed, 42))
	outage := 0
	return func(int) int {
		mu.Lock()
		defer mu.Unlock()
		if outage > 0 {
			outage--
			return 503
		}
		switch x := rnd.Float64(); {
		case x < 0.02:
			outage = 5 + rnd.IntN(30)
			return 503
		case x < 0.22:
			return 503
		case x < 0.26:
			return 429
		case x < 0.28:
			return 400
		case x < 0.32:
			return -1 // drop the connection
		}
		return 0
	}
}

// TestPropertyEveryMessageIsDeliveredDeadLetteredOrNackedOnce runs the
// default composition against random failure patterns, with random worker
// counts, breaker modes and hard stops, and checks the accounting.
func TestPropertyEveryMessageIsDeliveredDeadLetteredOrNackedOnce(t *testing.T) {
	const rounds, n = 12, 300
	var total struct{ produced, delivered, deadLettered, nacked, acceptedThenNacked, requests int }
	for seed := range uint64(rounds) {
		rnd := rand.New(rand.NewPCG(seed, 7))
		srv := newServer(t, flakyDecider(seed))
		clock := pipelinetest.NewFakeClock(epoch)
		stop := autoAdvance(clock)
		retry := newRetry(t, RetryConfig{MaxAttempts: 1 + rnd.IntN(5), BaseDelay: 100 * time.Millisecond,
			MaxDelay: 2 * time.Second, Jitter: backoff.FullJitter}, clock)
		onOpen := OnOpen(rnd.IntN(2))
		br := newBreaker(t, BreakerConfig{FailureThreshold: 5, FailureRate: 0.5, Window: 10 * time.Second,
			MinCalls: 20, RecoveryTimeout: time.Second, HalfOpenMaxCalls: 2, SuccessThreshold: 2, OnOpen: onOpen}, clock)
		src, dlq := newIDSource(n), &pipelinetest.Sink{}
		ctx, cancel := context.WithCancel(context.Background())
		stopAt := -1
		if rnd.IntN(2) == 0 {
			stopAt = rnd.IntN(n)
			src.onAck = func(acked int) {
				if acked >= stopAt {
					cancel()
				}
			}
		}
		workers := 1 + rnd.IntN(8)
		sink := Sink(srv.sink(), retry, br, Timeout{D: time.Minute})
		err := runPipeline(t, ctx, clock, src, sink, pipeline.NodeOptions{Workers: workers}, dlq)
		cancel()
		stop()
		if err != nil && stopAt < 0 {
			t.Fatalf("seed %d: %v", seed, err)
		}

		acked, nacked := src.results()
		accepted, dead := srv.Accepted(), deadLetters(t, dlq)
		src.mu.Lock()
		produced := src.created
		src.mu.Unlock()
		delivered, deadLettered, acceptedThenNacked := 0, 0, 0
		for id := range produced {
			a, k := acked[id], nacked[id]
			_, isDead := dead[id]
			switch {
			case a+k != 1:
				t.Errorf("seed %d: message %d acked %d times, nacked %d times", seed, id, a, k)
			case accepted[id] > 1:
				t.Errorf("seed %d: message %d accepted %d times", seed, id, accepted[id])
			case isDead && accepted[id] == 1:
				t.Errorf("seed %d: message %d both delivered and dead-lettered", seed, id)
			case a == 1 && accepted[id] == 1:
				delivered++
			case a == 1 && isDead:
				deadLettered++
			case a == 1:
				t.Errorf("seed %d: message %d acked but neither delivered nor dead-lettered", seed, id)
			case accepted[id] == 1:
				acceptedThenNacked++ // the hard stop cut the request after the server took it
			}
		}
		if delivered+deadLettered+len(nacked) != produced {
			t.Errorf("seed %d: delivered %d + dead-lettered %d + nacked %d != produced %d",
				seed, delivered, deadLettered, len(nacked), produced)
		}
		t.Logf("seed %2d: workers %d, max_attempts %d, on_open %d, stop after %4d acks: produced %d = delivered %d + dead-lettered %d + nacked %d (%d of them accepted before the hard stop); %d requests",
			seed, workers, retry.cfg.MaxAttempts, onOpen, stopAt, produced, delivered, deadLettered, len(nacked), acceptedThenNacked, srv.requests.Load())
		total.produced += produced
		total.delivered += delivered
		total.deadLettered += deadLettered
		total.nacked += len(nacked)
		total.acceptedThenNacked += acceptedThenNacked
		total.requests += int(srv.requests.Load())
	}
	t.Logf("total over %d rounds: produced %d = delivered %d + dead-lettered %d + nacked %d (%d accepted before the hard stop); %d requests",
		rounds, total.produced, total.delivered, total.deadLettered, total.nacked, total.acceptedThenNacked, total.requests)
}
