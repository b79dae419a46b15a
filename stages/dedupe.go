package stages

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/expr"
	"github.com/pipe-dsl/pipe/internal/ttlcache"
	"github.com/pipe-dsl/pipe/pipeline"
)

type dedupeConfig struct {
	Key     *expr.Program `pipe:"key,required" desc:"CEL expression naming a message; a message whose key was seen within ttl is dropped and acked as a duplicate." example:"msg.order_id"`
	TTL     time.Duration `pipe:"ttl" min:"0" desc:"How long a key is remembered after its first sighting; 0 means until evicted." example:"1h"`
	MaxKeys int           `pipe:"max_keys" min:"1" desc:"The most keys remembered; when full, the least recently seen key is forgotten (counted) to make room. Memory is about max_keys times the key length plus 100 bytes." example:"1000000"`
	Scope   string        `pipe:"scope" enum:"process,global" desc:"process: keys are remembered in this process. global: in the top-level state: store, an atomic claim per key with ttl, so every replica passes each key once (max_keys does not apply; see docs/scaling.md)."`
}

func init() {
	component.Register(component.Stage("dedupe",
		"Drops and acks messages whose key was seen within ttl. A key is remembered from its first sighting, and forgotten again if that message is nacked, so a redelivery passes.",
		dedupeConfig{TTL: 10 * time.Minute, MaxKeys: 100000, Scope: scopeProcess},
		newDedupe, component.WithShorthand("key"), component.WithBatching(component.BatchesReject)))
}

// DedupeStats counts what a dedupe stage did since it was built.
type DedupeStats struct {
	// Passed counts first sightings sent on; Duplicates those dropped.
	Passed, Duplicates uint64
	// Forgotten counts keys removed because their message was nacked.
	Forgotten uint64
	// Keys is the number of keys remembered, including expired ones not yet
	// removed.
	Keys int
	// Evictions counts keys forgotten before ttl to make room: a duplicate
	// of one of them passes.
	Evictions uint64
	// Expirations counts keys removed after ttl.
	Expirations uint64
}

// dedupe passes the first message of each key within ttl.
//
//	in  -- a1 -- b1 -- a2 -- c1 -- b2 --   (letter = key)
//	out -- a1 -- b1 -------- c1 --------
//
// A key is remembered when its message passes, not when the message is
// delivered; to keep a nack from turning a redelivery into a "duplicate",
// the message sent on carries its own acknowledgement, and a nack of it
// forgets the key before nacking the input.
type dedupe struct {
	clock pipeline.Clock
	key   *expr.Program
	seen  *ttlcache.Cache[string, uint64] // key -> sighting id

	ids                           atomic.Uint64
	passed, duplicates, forgotten atomic.Uint64
}

var (
	_ pipeline.Processor = (*dedupe)(nil)
	_ pipeline.Reporter  = (*dedupe)(nil)
)

func newDedupe(c *dedupeConfig, env component.Env) (any, error) {
	if c.MaxKeys < 1 {
		return nil, errors.New("max_keys must be >= 1")
	}
	if c.TTL < 0 {
		return nil, errors.New("ttl must be >= 0")
	}
	if c.Scope == scopeGlobal {
		return newGlobalDedupe(c, env) // dedupe_global.go
	}
	d := &dedupe{clock: env.Clock, key: c.Key, seen: ttlcache.New[string, uint64](c.MaxKeys, c.TTL)}
	if d.clock == nil {
		d.clock = pipeline.SystemClock
	}
	return d, nil
}

func (d *dedupe) Process(_ context.Context, m *pipeline.Message) (*pipeline.Message, error) {
	if m.Batch() != nil {
		return nil, errBatch("dedupe")
	}
	key, err := keyOf(d.key, m)
	if err != nil {
		return nil, err
	}
	id := d.ids.Add(1)
	if _, seen := d.seen.GetOrSet(key, d.clock.Now(), func() uint64 { return id }); seen {
		d.duplicates.Add(1)
		return nil, pipeline.Drop("duplicate")
	}
	d.passed.Add(1)
	return onNack(m, func() {
		// Forget the key only if it is still this sighting's: it may have
		// expired and been seen afresh since.
		if d.seen.DeleteIf(key, func(v uint64) bool { return v == id }) {
			d.forgotten.Add(1)
		}
	}), nil
}

// onNack returns a copy of m that acks m when acked and, when nacked, runs
// forget before nacking m: a dedupe forgets a sighting so the redelivery
// passes.
func onNack(m *pipeline.Message, forget func()) *pipeline.Message {
	out := pipeline.NewMessage(m.Body, func(err error) {
		if err == nil {
			m.Ack()
			return
		}
		forget()
		m.Nack(err)
	})
	out.Meta, out.Created = m.Meta, m.Created
	out.SetDecoded(m.Decoded())
	out.SetContext(m.Context())
	return out
}

// Stats returns the stage's counters. It is safe to call concurrently with
// Process.
func (d *dedupe) Stats() DedupeStats {
	cs := d.seen.Stats()
	return DedupeStats{
		Passed:      d.passed.Load(),
		Duplicates:  d.duplicates.Load(),
		Forgotten:   d.forgotten.Load(),
		Keys:        d.seen.Len(),
		Evictions:   cs.Evictions,
		Expirations: cs.Expirations,
	}
}

// Report returns the duplicates dropped (hits), the keys remembered and the
// keys evicted, expired or forgotten.
func (d *dedupe) Report() []pipeline.Figure {
	s := d.Stats()
	return []pipeline.Figure{
		{Name: "hits", Help: "Duplicates dropped: messages whose key was remembered.", Kind: pipeline.Counter, Value: float64(s.Duplicates)},
		{Name: "misses", Help: "First sightings sent on.", Kind: pipeline.Counter, Value: float64(s.Passed)},
		{Name: "keys", Help: "Keys remembered, expired ones not yet removed included.", Kind: pipeline.Gauge, Value: float64(s.Keys)},
		{Name: "evictions", Help: "Keys forgotten before ttl to make room under max_keys; a duplicate of one passes.", Kind: pipeline.Counter, Value: float64(s.Evictions)},
		{Name: "expirations", Help: "Keys removed after ttl.", Kind: pipeline.Counter, Value: float64(s.Expirations)},
		{Name: "forgotten", Help: "Keys forgotten because their message was nacked.", Kind: pipeline.Counter, Value: float64(s.Forgotten)},
	}
}
