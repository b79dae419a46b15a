package stages

import (
	"context"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/expr"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/state"
)

// releaseTimeout bounds how long a nack waits to forget a key in the store.
const releaseTimeout = 10 * time.Second

// globalDedupe is dedupe with scope: global: the first sighting of a key
// is claimed in the state store (Redis: one Lua set-if-absent with PX ttl;
// PostgreSQL: INSERT ... ON CONFLICT with an expiry), so across every
// replica each key passes once per ttl. A claim carries the message's
// token, so retrying a claim whose reply was lost still passes it, and a
// nack releases only its own claim.
//
// While the store is unreachable, Process waits (guard: backoff, breaker):
// nothing passes unchecked, nothing is acked or lost. A nack whose release
// cannot reach the store within releaseTimeout leaves the key claimed
// (counted as release_failed): its redelivery is then dropped as a
// duplicate until ttl.
type globalDedupe struct {
	key    *expr.Program
	ttl    time.Duration
	shared lazy[state.Shared]
	guard  *state.Guard
	id     string
	node   string // keys are per node: two dedupe stages never share claims

	ids                                          atomic.Uint64
	passed, duplicates, forgotten, releaseFailed atomic.Uint64
}

var (
	_ pipeline.Processor = (*globalDedupe)(nil)
	_ pipeline.Closer    = (*globalDedupe)(nil)
	_ pipeline.Reporter  = (*globalDedupe)(nil)
)

func newGlobalDedupe(c *dedupeConfig, env component.Env) (any, error) {
	if err := needState(env); err != nil {
		return nil, err
	}
	g, err := guardFor(env)
	if err != nil {
		return nil, err
	}
	return &globalDedupe{key: c.Key, ttl: c.TTL, guard: g, id: instanceID(), node: env.Node,
		shared: lazy[state.Shared]{open: env.State.OpenShared}}, nil
}

func (d *globalDedupe) Process(ctx context.Context, m *pipeline.Message) (*pipeline.Message, error) {
	if m.Batch() != nil {
		return nil, errBatch("dedupe")
	}
	key, err := keyOf(d.key, m)
	if err != nil {
		return nil, err
	}
	key = d.node + ":" + key
	shared, err := d.shared.get()
	if err != nil {
		return nil, err
	}
	token := d.id + ":" + strconv.FormatUint(d.ids.Add(1), 10)
	var held bool
	if err := d.guard.Do(ctx, func(ctx context.Context) (err error) {
		held, err = shared.Claim(ctx, key, token, d.ttl)
		return err
	}); err != nil {
		return nil, err
	}
	if !held {
		d.duplicates.Add(1)
		return nil, pipeline.Drop("duplicate")
	}
	d.passed.Add(1)
	return onNack(m, func() {
		ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
		defer cancel()
		if err := d.guard.Do(ctx, func(ctx context.Context) error { return shared.Release(ctx, key, token) }); err != nil {
			d.releaseFailed.Add(1)
			return
		}
		d.forgotten.Add(1)
	}), nil
}

// Close releases the store connection.
func (d *globalDedupe) Close(ctx context.Context) error { return d.shared.Close(ctx) }

// Report returns the stage's figures and its store guard's.
func (d *globalDedupe) Report() []pipeline.Figure {
	return append([]pipeline.Figure{
		{Name: "passed", Help: "First sightings passed on.", Value: float64(d.passed.Load())},
		{Name: "duplicates", Help: "Messages dropped as duplicates.", Value: float64(d.duplicates.Load())},
		{Name: "forgotten", Help: "Claims released because their message was nacked.", Value: float64(d.forgotten.Load())},
		{Name: "release_failed", Help: "Nacked messages whose claim could not be released.", Value: float64(d.releaseFailed.Load())},
	}, d.guard.Report()...)
}
