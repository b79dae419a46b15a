package state

import (
	"context"
	"sync"
)

// Owner is this process's ownership of one scope: the epoch its Load
// returned, and the one way it commits under that epoch. A stateful stage
// (the window stage) holds one Owner per scope it owns:
//
//	owner, cp, err := state.Acquire(ctx, store, guard, scope) // restore from cp
//	...every checkpoint_interval, between two messages:
//	err = owner.Commit(ctx, stages, positions) // then ack what cp covers
//	errors.Is(err, state.ErrFenced): another replica owns scope now; stop.
//
// Commits run through the guard (backoff, breaker), except a fenced one,
// which fails at once. An Owner is safe for concurrent use; its commits
// are serialized.
type Owner struct {
	store Store
	guard *Guard
	scope string

	mu    sync.Mutex
	epoch int64
	seq   int64
}

// Acquire loads scope (bumping its epoch, which fences any previous owner)
// and returns the Owner with the checkpoint to restore from.
func Acquire(ctx context.Context, store Store, guard *Guard, scope string) (*Owner, Checkpoint, error) {
	var cp Checkpoint
	err := guard.Do(ctx, func(ctx context.Context) (err error) {
		cp, err = store.Load(ctx, scope)
		return err
	})
	if err != nil {
		return nil, Checkpoint{}, err
	}
	return &Owner{store: store, guard: guard, scope: scope, epoch: cp.Epoch, seq: cp.Seq}, cp, nil
}

// Commit writes stages and positions as the scope's whole checkpoint, in
// one atomic step (Store.Commit, the commit point). On nil, everything they
// cover is durable and the covered source messages may be acked.
func (o *Owner) Commit(ctx context.Context, stages, positions map[string][]byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	cp := Checkpoint{Epoch: o.epoch, Stages: stages, Positions: positions}
	return o.guard.Do(ctx, func(ctx context.Context) error {
		seq, err := o.store.Commit(ctx, o.scope, cp)
		if err == nil {
			o.seq = seq
		}
		return err
	})
}

// Seq is the sequence number of the last checkpoint this owner loaded or
// committed.
func (o *Owner) Seq() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.seq
}
