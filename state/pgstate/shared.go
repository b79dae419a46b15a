package pgstate

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pipe-dsl/pipe/state"
)

// Shared holds dedupe claims in <table>_keys. An expired claim is taken
// over by the next claim of its key; rows of keys never seen again are
// deleted by [Shared.Sweep], which a Claim runs at most once per sweepEvery
// per process, so the table holds about one TTL's worth of keys.
type Shared struct {
	d     *db
	every time.Duration    // between sweeps started by Claim
	now   func() time.Time // the process clock that paces sweeps
	next  atomic.Int64     // unix nanoseconds when the next sweep is due; 0: at the first claim
}

// sweepEvery paces the sweeps Claim starts; sweepBatch and sweepRounds
// bound the rows one sweep deletes (sweepBatch per statement), so a claim
// that sweeps takes at most sweepRounds short statements longer.
const (
	sweepEvery  = time.Minute
	sweepBatch  = 1000
	sweepRounds = 10
)

var _ state.Shared = (*Shared)(nil)

// Claim is one statement: insert the claim, or take over an expired one,
// and return the holder's token; a conflict with a live claim returns the
// existing holder from the statement's snapshot.
func (s *Shared) Claim(ctx context.Context, key, token string, ttl time.Duration) (bool, error) {
	pool, err := s.d.get(ctx)
	if err != nil {
		return false, err
	}
	var holder string
	err = pool.QueryRow(ctx, `WITH ins AS (
  INSERT INTO `+s.d.keys+` AS k (key, token, expires_at)
  VALUES ($1, $2, CASE WHEN $3::bigint > 0 THEN now() + $3::bigint * interval '1 millisecond' END)
  ON CONFLICT (key) DO UPDATE SET token = EXCLUDED.token, expires_at = EXCLUDED.expires_at
    WHERE k.expires_at IS NOT NULL AND k.expires_at <= now()
  RETURNING token)
SELECT token FROM ins UNION ALL
SELECT token FROM `+s.d.keys+` WHERE key = $1 AND NOT EXISTS (SELECT 1 FROM ins)`, key, token, ttl.Milliseconds()).Scan(&holder)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil // a concurrent claim won after this statement's snapshot
	}
	if err != nil {
		return false, fmt.Errorf("dedupe claim: %w", err)
	}
	s.maybeSweep(ctx)
	return holder == token, nil
}

// maybeSweep runs Sweep if one is due, in the claiming goroutine: no
// goroutine of its own, and one sweep per process at a time (the CAS).
// A failed sweep is left for the next one: expired rows are harmless,
// Claim takes them over.
func (s *Shared) maybeSweep(ctx context.Context) {
	now := s.now().UnixNano()
	next := s.next.Load()
	if now < next || !s.next.CompareAndSwap(next, now+int64(s.every)) {
		return
	}
	_, _ = s.Sweep(ctx)
}

// Sweep deletes expired claims, at most sweepBatch × sweepRounds rows, and
// returns how many it deleted. Rows another replica is sweeping or claiming
// right now are skipped (SKIP LOCKED), so replicas never wait on each other.
// There is no index on expires_at on purpose: it would add a second write
// to every claim and rule out HOT updates, while this scan runs once per
// sweepEvery and stops at the first sweepBatch expired rows.
func (s *Shared) Sweep(ctx context.Context) (int64, error) {
	pool, err := s.d.get(ctx)
	if err != nil {
		return 0, err
	}
	var n int64
	for range sweepRounds {
		tag, err := pool.Exec(ctx, `DELETE FROM `+s.d.keys+` WHERE key IN (
  SELECT key FROM `+s.d.keys+` WHERE expires_at <= now() LIMIT `+strconv.Itoa(sweepBatch)+` FOR UPDATE SKIP LOCKED)`)
		if err != nil {
			return n, fmt.Errorf("dedupe sweep: %w", err)
		}
		n += tag.RowsAffected()
		if tag.RowsAffected() < sweepBatch {
			break
		}
	}
	return n, nil
}

// Release forgets key if token still holds it.
func (s *Shared) Release(ctx context.Context, key, token string) error {
	pool, err := s.d.get(ctx)
	if err != nil {
		return err
	}
	if _, err := pool.Exec(ctx, `DELETE FROM `+s.d.keys+` WHERE key = $1 AND token = $2`, key, token); err != nil {
		return fmt.Errorf("dedupe release: %w", err)
	}
	return nil
}

// Close closes the pool.
func (s *Shared) Close() error { return s.d.close() }
