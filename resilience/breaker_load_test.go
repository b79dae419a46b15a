package resilience

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

// gate is a server behaviour that holds each request until released and
// tracks how many it holds at once.
type gate struct {
	arrived chan struct{}
	release chan struct{}

	mu            sync.Mutex
	inFlight, max int
}

func newGate() *gate {
	return &gate{arrived: make(chan struct{}, 100), release: make(chan struct{})}
}

func (g *gate) hold() {
	g.mu.Lock()
	g.inFlight++
	g.max = max(g.max, g.inFlight)
	g.mu.Unlock()
	g.arrived <- struct{}{}
	<-g.release
	g.mu.Lock()
	g.inFlight--
	g.mu.Unlock()
}

func (g *gate) peak() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.max
}

const (
	modeDown = iota
	modeGate
	modeUp
)

func TestGivenConcurrentLoad_TheHalfOpenBreakerAdmitsOnlyItsProbes(t *testing.T) {
	var mode atomic.Int32
	g := newGate()
	srv := newServer(t, func(int) int {
		switch mode.Load() {
		case modeDown:
			return 503
		case modeGate:
			g.hold()
		}
		return 0
	})
	clock := pipelinetest.NewFakeClock(epoch)
	br := newBreaker(t, BreakerConfig{FailureThreshold: 3, RecoveryTimeout: 10 * time.Second,
		HalfOpenMaxCalls: 2, SuccessThreshold: 4}, clock)
	const n, workers = 200, 8
	src, dlq := newIDSource(n), &pipelinetest.Sink{}
	done := make(chan error)
	go func() {
		done <- runPipeline(t, context.Background(), clock, src, Sink(srv.sink(), br), pipeline.NodeOptions{Workers: workers}, dlq)
	}()

	// Every worker ends up holding a message at the open breaker.
	clock.WaitTimers(workers)
	if br.State() != StateOpen {
		t.Fatalf("state %v after the failures, want open", br.State())
	}
	failed := srv.requests.Load()
	mode.Store(modeGate)
	clock.Advance(10 * time.Second)

	// Two probes; each success frees a slot for one more; the fourth
	// success closes the breaker.
	<-g.arrived
	<-g.arrived
	for range 3 {
		g.release <- struct{}{}
		<-g.arrived
	}
	if g.peak() != 2 || br.State() != StateHalfOpen {
		t.Fatalf("half-open: server held %d requests at once, state %v; want 2, half-open", g.peak(), br.State())
	}
	mode.Store(modeUp)
	g.release <- struct{}{} // the fourth success
	g.release <- struct{}{} // the probe admitted before the breaker closed
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	accepted, dead := srv.Accepted(), deadLetters(t, dlq)
	if len(accepted)+len(dead) != n || len(dead) != int(failed) {
		t.Errorf("accepted %d + dead-lettered %d, want %d with %d failures", len(accepted), len(dead), n, failed)
	}
	for id, c := range accepted {
		if _, ok := dead[id]; ok || c != 1 {
			t.Errorf("message %d accepted %d times, dead-lettered %v", id, c, ok)
		}
	}
	if s := br.Stats(); s.Opened != 1 || s.HalfOpened != 1 || s.Closed != 1 || s.State != StateClosed {
		t.Errorf("Stats() = %+v", s)
	}
	t.Logf("failed %d while closed, 5 probes, then %d delivered", failed, len(accepted)-5)
}

func TestGivenOnOpenBlock_TheSourceStopsWithinTheBufferBoundAndResumes(t *testing.T) {
	var up atomic.Bool
	srv := newServer(t, func(int) int {
		if up.Load() {
			return 0
		}
		return 503
	})
	clock := pipelinetest.NewFakeClock(epoch)
	br := newBreaker(t, BreakerConfig{FailureThreshold: 1, RecoveryTimeout: 10 * time.Second}, clock)
	const n, workers, buffer = 100, 2, 4
	src, dlq := newIDSource(n), &pipelinetest.Sink{}
	src.sentTo = make(chan int, n)
	p := pipeline.New("block")
	p.Clock, p.Logger = clock, quiet
	for _, err := range []error{
		p.AddSource("src", "ids", src),
		p.AddSink("out", "post", Sink(srv.sink(), br), pipeline.NodeOptions{Workers: workers, Buffer: buffer}),
		p.Connect("src", "", "out"),
		p.SetDeadLetter("recorder", dlq, pipeline.NodeOptions{}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error)
	go func() { done <- p.Run(context.Background()) }()

	clock.WaitTimers(workers)
	failed := int(srv.requests.Load())
	bound := failed + workers + buffer
	for range bound {
		<-src.sentTo
	}
	stats := p.Stats()
	if stats[1].Queued != buffer || len(src.sentTo) != 0 || src.Sent() != bound {
		t.Fatalf("blocked: queued %d, sent %d; want the buffer (%d) full and %d sent", stats[1].Queued, src.Sent(), buffer, bound)
	}
	acked, _ := src.results()
	if len(acked) > failed || len(srv.Accepted()) != 0 {
		t.Errorf("acked %d, accepted %d while blocked; want at most the %d dead-lettered", len(acked), len(srv.Accepted()), failed)
	}

	up.Store(true)
	clock.Advance(10 * time.Second)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	accepted := srv.Accepted()
	if len(accepted) != n-failed || len(deadLetters(t, dlq)) != failed || src.Sent() != n {
		t.Errorf("accepted %d, dead-lettered %d, sent %d; want %d, %d, %d",
			len(accepted), len(dlq.Bodies()), src.Sent(), n-failed, failed, n)
	}
	t.Logf("held at %d sent (%d failed + %d workers + buffer %d), then all %d delivered or dead-lettered", bound, failed, workers, buffer, n)
}
