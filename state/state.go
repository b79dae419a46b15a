// Package state owns pipe's durable state: checkpoints of stage state and
// source positions committed together, and the shared keys that make
// dedupe and throttle global across replicas.
//
// The one commit point is [Store.Commit]: a [Checkpoint] (every stage's
// state blob and every source position it covers) is written in one atomic
// step, or not at all. Redis commits in one MULTI/EXEC guarded by WATCH on
// the scope's epoch; PostgreSQL in one transaction that locks the epoch row.
// [Store.Load] takes ownership of a scope: it bumps the scope's epoch
// (fencing token, like a Kafka producer epoch), so a zombie replica that
// still holds an older epoch has every later Commit refused with
// [ErrFenced] and can never overwrite a newer checkpoint.
//
// A stage commits through an [Owner] ([Acquire] takes a scope, Owner.Commit
// writes under its epoch), and every store call runs under a [Guard]
// (backoff and a breaker). This package holds the interfaces, Owner and
// Guard; the backends live
// in state/redisstate and state/pgstate, imported by dsl (and embedders),
// so stages depend only on these small interfaces.
package state

import (
	"context"
	"errors"
	"time"
)

// ErrFenced is returned by Commit when a newer owner has loaded the scope
// since this checkpoint's epoch: this process must stop writing state.
var ErrFenced = errors.New("state: checkpoint fenced by a newer owner")

// ErrLost is returned by Commit when the scope's epoch is older than the
// committing owner's: the store lost the scope (restarted without its data,
// or the keys were deleted), so the checkpoints committed before are gone
// and the owner must stop rather than write over the hole.
var ErrLost = errors.New("state: the store lost this scope (its epoch went back; was it restarted without persistence?)")

// ErrNoLimiter is returned by Backend.OpenLimiter for backends without a
// store-side rate limiter (PostgreSQL).
var ErrNoLimiter = errors.New("state: this store has no global rate limiter")

// DefaultCheckpointInterval is checkpoint_interval when unset.
const DefaultCheckpointInterval = time.Second

// Checkpoint is a consistent cut: the state of every stateful stage and
// the source positions that state covers. After a restore, each source
// rewinds to its position and replays in order from there.
//
// The zero value is the empty checkpoint of a scope never committed.
type Checkpoint struct {
	// Epoch is the owner's fencing token, set by Load; Commit refuses a
	// checkpoint whose Epoch is older than the scope's.
	Epoch int64
	// Seq counts commits of the scope; Commit stores Seq+1 and Load returns
	// the last stored value (0: never committed).
	Seq int64
	// Stages maps a stage's node name to its opaque serialized state.
	Stages map[string][]byte
	// Positions maps a source partition ("node/partition", e.g.
	// "orders/3" for a Kafka partition) to its opaque position (offset,
	// stream sequence): the first message NOT covered by Stages.
	Positions map[string][]byte
}

// Bytes is the checkpoint's payload size: names plus values.
func (c Checkpoint) Bytes() int {
	n := 0
	for k, v := range c.Stages {
		n += len(k) + len(v)
	}
	for k, v := range c.Positions {
		n += len(k) + len(v)
	}
	return n
}

// Store keeps checkpoints per scope (usually the pipeline name, or
// "name/partition" when replicas own key partitions). Implementations are
// safe for concurrent use.
type Store interface {
	// Load takes ownership of scope and returns its last committed
	// checkpoint with a new Epoch, newer than any before: commits made with
	// older epochs are refused from now on. A scope never committed returns
	// an empty Checkpoint (Seq 0) with its new Epoch.
	Load(ctx context.Context, scope string) (Checkpoint, error)
	// Commit atomically replaces scope's checkpoint with cp (all stages and
	// positions, none kept from before) and returns the stored Seq. It
	// fails with ErrFenced, writing nothing, if a newer owner loaded the
	// scope since cp.Epoch, and with ErrLost if the scope's epoch is older
	// than cp.Epoch (the store lost it). Any other error also means nothing was written, or the
	// whole checkpoint was: Load tells which (compare Seq).
	Commit(ctx context.Context, scope string, cp Checkpoint) (seq int64, err error)
	Close() error
}

// Shared is the store side of `scope: global` dedupe. Implementations are
// safe for concurrent use.
type Shared interface {
	// Claim marks key as seen by token for ttl unless another token holds
	// it unexpired. It reports whether token holds key afterwards, so a
	// retry of a claim whose reply was lost still passes (idempotent).
	Claim(ctx context.Context, key, token string, ttl time.Duration) (bool, error)
	// Release forgets key if token still holds it (a nacked message's
	// redelivery must pass).
	Release(ctx context.Context, key, token string) error
	Close() error
}

// Limiter is a store-side GCRA rate limiter shared by every replica.
type Limiter interface {
	// Allow admits one event for key at the store's clock under
	// (emission interval 1/rate, burst). When not allowed, retryAfter says
	// when the next event could pass.
	Allow(ctx context.Context, key string, rate float64, burst int) (allowed bool, retryAfter time.Duration, err error)
	Close() error
}

// Backend is a configured store: the top-level `state:` block. Opening
// does no I/O; connections are made on first use.
type Backend interface {
	// Kind is "redis" or "postgres".
	Kind() string
	CheckpointInterval() time.Duration
	OpenStore() (Store, error)
	OpenShared() (Shared, error)
	// OpenLimiter fails with ErrNoLimiter where the store has none.
	OpenLimiter() (Limiter, error)
	// OpenLeases returns the leases replicas divide partitions with.
	OpenLeases() (Leases, error)
}
