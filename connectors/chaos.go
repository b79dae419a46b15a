package connectors

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/internal/httpclient"
	"github.com/pipe-dsl/pipe/pipeline"
)

type chaosConfig struct {
	FailFirst int           `pipe:"fail_first" desc:"How many writes fail first, before fail_rate applies." example:"3" min:"0"`
	FailRate  float64       `pipe:"fail_rate" desc:"Probability that each later write fails." example:"0.1" min:"0" max:"1"`
	Latency   time.Duration `pipe:"latency" desc:"How long every write takes, on the pipeline clock (virtual under pipe test)." example:"50ms" min:"0"`
	Status    int           `pipe:"status" desc:"HTTP status of the injected failures: 408, 429 and 5xx are retryable, other statuses are not." example:"503" min:"100" max:"599"`
	Seed      int64         `pipe:"seed" desc:"Seed of the fail_rate draws: the same seed fails the same writes." example:"42"`
	Path      string        `pipe:"path" desc:"File to append accepted messages to, one per line (each batch member); empty discards them." example:"accepted.ndjson"`
}

func init() {
	component.Register(component.Sink("chaos",
		"Fault injection for tests and demos: fails the first writes and then a seeded random share of them with an HTTP status error, after a latency; accepted messages are discarded or appended to a file.",
		chaosConfig{Status: 503, Seed: 1}, newChaos))
}

// chaos fails writes on a deterministic schedule. Write n (counting from
// 1, in the order writes reach the sink) fails if n <= fail_first, else if
// the n-th draw of a PCG generator seeded with seed is below fail_rate.
type chaos struct {
	cfg   chaosConfig
	clock pipeline.Clock
	out   *fileSink // nil when path is empty

	mu     sync.Mutex
	writes int
	rng    *rand.Rand
}

var (
	_ pipeline.Sink   = (*chaos)(nil)
	_ pipeline.Closer = (*chaos)(nil)
)

func newChaos(c *chaosConfig, env component.Env) (pipeline.Sink, error) {
	s := &chaos{cfg: *c, clock: env.Clock, rng: rand.New(rand.NewPCG(uint64(c.Seed), uint64(c.Seed)))}
	if c.Path != "" {
		s.out = &fileSink{cfg: fileSinkConfig{Path: c.Path, Append: true}}
	}
	return s, nil
}

// Write waits latency, then fails with a *httpclient.StatusError or accepts
// m.
func (s *chaos) Write(ctx context.Context, m *pipeline.Message) error {
	if s.cfg.Latency > 0 {
		t := s.clock.NewTimer(s.cfg.Latency)
		select {
		case <-t.C():
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	if s.fail() {
		return &httpclient.StatusError{Code: s.cfg.Status, Body: "injected by chaos sink"}
	}
	if s.out != nil {
		return s.out.Write(ctx, m)
	}
	return nil
}

// fail decides the next write.
func (s *chaos) fail() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	if s.writes <= s.cfg.FailFirst {
		return true
	}
	return s.cfg.FailRate > 0 && s.rng.Float64() < s.cfg.FailRate
}

func (s *chaos) Close(ctx context.Context) error {
	if s.out != nil {
		return s.out.Close(ctx)
	}
	return nil
}
