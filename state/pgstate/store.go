package pgstate

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pipe-dsl/pipe/state"
)

// Store keeps checkpoints as rows (scope, kind "s" stage | "p" position,
// name, value) and each scope's epoch and seq in <table>_meta.
type Store struct{ d *db }

var _ state.Store = (*Store)(nil)

// Load bumps scope's epoch and reads its checkpoint, in one transaction:
// the epoch row stays locked until the rows are read, so no commit lands
// between the two.
func (s *Store) Load(ctx context.Context, scope string) (state.Checkpoint, error) {
	pool, err := s.d.get(ctx)
	if err != nil {
		return state.Checkpoint{}, err
	}
	cp := state.Checkpoint{Stages: map[string][]byte{}, Positions: map[string][]byte{}}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO `+s.d.meta+` (scope, epoch, seq) VALUES ($1, 1, 0)
ON CONFLICT (scope) DO UPDATE SET epoch = `+s.d.meta+`.epoch + 1 RETURNING epoch, seq`, scope).Scan(&cp.Epoch, &cp.Seq); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT kind, name, value FROM `+s.d.cp+` WHERE scope = $1`, scope)
		if err != nil {
			return err
		}
		var kind, name string
		var value []byte
		_, err = pgx.ForEachRow(rows, []any{&kind, &name, &value}, func() error {
			if kind == "s" {
				cp.Stages[name] = value
			} else {
				cp.Positions[name] = value
			}
			return nil
		})
		return err
	})
	if err != nil {
		return state.Checkpoint{}, fmt.Errorf("load state %q: %w", scope, err)
	}
	return cp, nil
}

// Commit is the commit point: one transaction locks the scope's epoch row,
// refuses a stale epoch (ErrFenced) or one gone back (ErrLost), upserts every stage blob and source
// position, deletes the rows the checkpoint no longer has, bumps seq and
// commits. A connection lost before COMMIT reaches the server rolls it all
// back: the previous checkpoint stays whole.
func (s *Store) Commit(ctx context.Context, scope string, cp state.Checkpoint) (int64, error) {
	pool, err := s.d.get(ctx)
	if err != nil {
		return 0, err
	}
	kinds := make([]string, 0, len(cp.Stages)+len(cp.Positions))
	names := make([]string, 0, cap(kinds))
	values := make([][]byte, 0, cap(kinds))
	for k, v := range cp.Stages {
		kinds, names, values = append(kinds, "s"), append(names, k), append(values, v)
	}
	for k, v := range cp.Positions {
		kinds, names, values = append(kinds, "p"), append(names, k), append(values, v)
	}
	var seq int64
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var epoch int64
		err := tx.QueryRow(ctx, `SELECT epoch, seq FROM `+s.d.meta+` WHERE scope = $1 FOR UPDATE`, scope).Scan(&epoch, &seq)
		if errors.Is(err, pgx.ErrNoRows) {
			epoch, seq = 0, 0
		} else if err != nil {
			return err
		}
		switch {
		case epoch < cp.Epoch:
			return fmt.Errorf("%w: epoch %d, this owner's %d", state.ErrLost, epoch, cp.Epoch)
		case epoch != cp.Epoch:
			return state.ErrFenced
		}
		seq++
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO `+s.d.cp+` (scope, kind, name, value)
SELECT $1, k, n, v FROM unnest($2::text[], $3::text[], $4::bytea[]) AS u(k, n, v)
ON CONFLICT (scope, kind, name) DO UPDATE SET value = EXCLUDED.value`, scope, kinds, names, values)
		b.Queue(`DELETE FROM `+s.d.cp+` t WHERE t.scope = $1 AND NOT EXISTS
(SELECT 1 FROM unnest($2::text[], $3::text[]) AS u(k, n) WHERE u.k = t.kind AND u.n = t.name)`, scope, kinds, names)
		b.Queue(`INSERT INTO `+s.d.meta+` (scope, epoch, seq) VALUES ($1, $2, $3)
ON CONFLICT (scope) DO UPDATE SET seq = EXCLUDED.seq`, scope, epoch, seq)
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return 0, fmt.Errorf("commit state %q: %w", scope, err)
	}
	return seq, nil
}

// Close closes the pool.
func (s *Store) Close() error { return s.d.close() }
