package stages

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/expr"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/state"
)

// globalThrottle is throttle with scope: global: one GCRA timeline per key
// kept in Redis (go-redis/redis_rate), so the replicas together admit rate
// messages per second with bursts of burst, as one process would. The
// timeline advances on the Redis server's clock, not the pipeline's.
//
// While the store is unreachable, Process waits (guard: backoff, breaker);
// nothing passes unchecked. A call whose reply was lost and is retried may
// count one admission twice: the shared limit errs on the strict side.
type globalThrottle struct {
	key     *expr.Program
	rate    float64
	burst   int
	onLimit string
	errOver error
	node    string // timelines are per node: two throttles never share one
	clock   pipeline.Clock
	lim     lazy[state.Limiter]
	guard   *state.Guard

	passed, delayed, dropped, deadLettered atomic.Uint64
}

var (
	_ pipeline.Processor = (*globalThrottle)(nil)
	_ pipeline.Closer    = (*globalThrottle)(nil)
	_ pipeline.Reporter  = (*globalThrottle)(nil)
)

func newGlobalThrottle(c *throttleConfig, env component.Env, errOver error) (any, error) {
	if err := needState(env); err != nil {
		return nil, err
	}
	if c.Algorithm != "token_bucket" {
		return nil, errors.New("scope: global supports algorithm token_bucket (GCRA in the store), not " + c.Algorithm)
	}
	if env.State.Kind() != "redis" {
		return nil, fmt.Errorf("scope: global throttle needs state: redis (GCRA runs in Redis via redis_rate); state: %s supports global dedupe only", env.State.Kind())
	}
	g, err := guardFor(env)
	if err != nil {
		return nil, err
	}
	t := &globalThrottle{key: c.Key, rate: c.Rate, burst: c.Burst, onLimit: c.OnLimit, errOver: errOver,
		node: env.Node, clock: env.Clock, guard: g, lim: lazy[state.Limiter]{open: env.State.OpenLimiter}}
	if t.clock == nil {
		t.clock = pipeline.SystemClock
	}
	return t, nil
}

func (t *globalThrottle) Process(ctx context.Context, m *pipeline.Message) (*pipeline.Message, error) {
	key := ""
	if t.key != nil {
		if m.Batch() != nil {
			return nil, errBatch("throttle with a key")
		}
		var err error
		if key, err = keyOf(t.key, m); err != nil {
			return nil, err
		}
	}
	lim, err := t.lim.get()
	if err != nil {
		return nil, err
	}
	for waited := false; ; waited = true {
		var ok bool
		var after time.Duration
		if err := t.guard.Do(ctx, func(ctx context.Context) (err error) {
			ok, after, err = lim.Allow(ctx, t.node+":"+key, t.rate, t.burst)
			return err
		}); err != nil {
			return nil, err
		}
		switch {
		case ok:
			if waited {
				t.delayed.Add(1)
			}
			t.passed.Add(1)
			return m, nil
		case t.onLimit == "drop":
			t.dropped.Add(1)
			return nil, pipeline.Drop(pipeline.ReasonRateLimited)
		case t.onLimit == "dead_letter":
			t.deadLettered.Add(1)
			return nil, t.errOver
		}
		if err := sleep(ctx, t.clock, max(after, 0)); err != nil {
			return nil, err
		}
	}
}

// Close releases the store connection.
func (t *globalThrottle) Close(ctx context.Context) error { return t.lim.Close(ctx) }

// Report returns the stage's figures and its store guard's.
func (t *globalThrottle) Report() []pipeline.Figure {
	return append([]pipeline.Figure{
		{Name: "passed", Help: "Messages admitted by the shared limit.", Value: float64(t.passed.Load())},
		{Name: "delayed", Help: "Admitted messages that waited.", Value: float64(t.delayed.Load())},
		{Name: "limited", Help: "Messages over the shared limit, by what happened to them.", Label: "action", LabelValue: "drop", Value: float64(t.dropped.Load())},
		{Name: "limited", Help: "Messages over the shared limit, by what happened to them.", Label: "action", LabelValue: "dead_letter", Value: float64(t.deadLettered.Load())},
	}, t.guard.Report()...)
}
