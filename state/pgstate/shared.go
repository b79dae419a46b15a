package pgstate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pipe-dsl/pipe/state"
)

// Shared holds dedupe claims in <table>_keys. An expired claim is taken
// over by the next claim of its key; expired rows of keys never seen again
// stay until deleted (DELETE FROM <table>_keys WHERE expires_at < now()).
type Shared struct{ d *db }

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
	return holder == token, nil
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
