package redisstate

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/pipe-dsl/pipe/state"
)

// Store keeps one checkpoint per scope in a hash, {prefix}{scope}:cp, with
// fields "seq", "s:<stage>" and "p:<source partition>", and the scope's
// fencing epoch in {prefix}{scope}:epoch. The braces are a cluster hash tag:
// both keys live in one slot, so one MULTI/EXEC covers them.
//
// One process commits a scope at a time (its owner); Commit is safe for
// concurrent use, but concurrent commits of one scope by one owner may
// interleave their Seq.
type Store struct {
	rdb    *goredis.Client
	prefix string
}

var _ state.Store = (*Store)(nil)

func (s *Store) keys(scope string) (cp, epoch string) {
	base := s.prefix + "{" + scope + "}"
	return base + ":cp", base + ":epoch"
}

// Load bumps scope's epoch (fencing out every older owner) and reads the
// last checkpoint.
func (s *Store) Load(ctx context.Context, scope string) (state.Checkpoint, error) {
	cpKey, epochKey := s.keys(scope)
	epoch, err := s.rdb.Incr(ctx, epochKey).Result()
	if err != nil {
		return state.Checkpoint{}, fmt.Errorf("load state %q: %w", scope, err)
	}
	fields, err := s.rdb.HGetAll(ctx, cpKey).Result()
	if err != nil {
		return state.Checkpoint{}, fmt.Errorf("load state %q: %w", scope, err)
	}
	cp := state.Checkpoint{Epoch: epoch, Stages: map[string][]byte{}, Positions: map[string][]byte{}}
	for k, v := range fields {
		switch {
		case k == "seq":
			if cp.Seq, err = strconv.ParseInt(v, 10, 64); err != nil {
				return state.Checkpoint{}, fmt.Errorf("load state %q: bad seq field", scope)
			}
		case strings.HasPrefix(k, "s:"):
			cp.Stages[k[2:]] = []byte(v)
		case strings.HasPrefix(k, "p:"):
			cp.Positions[k[2:]] = []byte(v)
		}
	}
	return cp, nil
}

// Commit is the commit point: under WATCH of the epoch key, it checks
// cp.Epoch and replaces the checkpoint hash in one MULTI/EXEC. If the
// epoch moved since WATCH, Redis discards the transaction and Commit
// returns ErrFenced; if it went back (the epoch key is gone), ErrLost.
// A connection lost before EXEC reaches Redis discards
// the queued commands: the previous checkpoint stays whole.
func (s *Store) Commit(ctx context.Context, scope string, cp state.Checkpoint) (int64, error) {
	cpKey, epochKey := s.keys(scope)
	var seq int64
	err := s.rdb.Watch(ctx, func(tx *goredis.Tx) error {
		epoch, err := tx.Get(ctx, epochKey).Int64()
		if errors.Is(err, goredis.Nil) {
			epoch = 0
		} else if err != nil {
			return err
		}
		switch {
		case epoch < cp.Epoch:
			return fmt.Errorf("%w: epoch %d, this owner's %d", state.ErrLost, epoch, cp.Epoch)
		case epoch != cp.Epoch:
			return state.ErrFenced
		}
		prev, err := tx.HGet(ctx, cpKey, "seq").Int64()
		if err != nil && !errors.Is(err, goredis.Nil) {
			return err
		}
		seq = prev + 1
		fields := make([]any, 0, 2+2*(len(cp.Stages)+len(cp.Positions)))
		fields = append(fields, "seq", seq)
		for k, v := range cp.Stages {
			fields = append(fields, "s:"+k, v)
		}
		for k, v := range cp.Positions {
			fields = append(fields, "p:"+k, v)
		}
		_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			p.Del(ctx, cpKey)
			p.HSet(ctx, cpKey, fields...)
			return nil
		})
		return err
	}, epochKey)
	switch {
	case errors.Is(err, goredis.TxFailedErr):
		return 0, fmt.Errorf("commit state %q: %w", scope, state.ErrFenced)
	case err != nil:
		return 0, fmt.Errorf("commit state %q: %w", scope, err)
	}
	return seq, nil
}

// Close closes the client.
func (s *Store) Close() error { return s.rdb.Close() }
