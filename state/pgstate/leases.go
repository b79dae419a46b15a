package pgstate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pipe-dsl/pipe/state"
)

// Leases keeps leases as rows of <table>_leases (grp, name, owner,
// expires_at), with expiry on the server's clock. Each operation is one
// statement: the row lock serializes concurrent replicas.
type Leases struct{ d *db }

var _ state.Leases = (*Leases)(nil)

// Acquire inserts the lease, or takes it over when it expired or is
// already owner's; no row returned means another owner holds it.
func (l *Leases) Acquire(ctx context.Context, group, name, owner string, ttl time.Duration) (bool, error) {
	pool, err := l.d.getLeases(ctx)
	if err != nil {
		return false, err
	}
	var got string
	err = pool.QueryRow(ctx, `INSERT INTO `+l.d.leases+` AS l (grp, name, owner, expires_at)
VALUES ($1, $2, $3, clock_timestamp() + $4::bigint * interval '1 millisecond')
ON CONFLICT (grp, name) DO UPDATE SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at
  WHERE l.owner = EXCLUDED.owner OR l.expires_at <= clock_timestamp()
RETURNING owner`, group, name, owner, ttl.Milliseconds()).Scan(&got)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("lease acquire: %w", err)
	}
	return got == owner, nil
}

// Renew extends the lease only while owner holds it unexpired.
func (l *Leases) Renew(ctx context.Context, group, name, owner string, ttl time.Duration) (bool, error) {
	pool, err := l.d.getLeases(ctx)
	if err != nil {
		return false, err
	}
	tag, err := pool.Exec(ctx, `UPDATE `+l.d.leases+` SET expires_at = clock_timestamp() + $4::bigint * interval '1 millisecond'
WHERE grp = $1 AND name = $2 AND owner = $3 AND expires_at > clock_timestamp()`, group, name, owner, ttl.Milliseconds())
	if err != nil {
		return false, fmt.Errorf("lease renew: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// Release deletes the lease if owner holds it.
func (l *Leases) Release(ctx context.Context, group, name, owner string) error {
	pool, err := l.d.getLeases(ctx)
	if err != nil {
		return err
	}
	if _, err := pool.Exec(ctx, `DELETE FROM `+l.d.leases+` WHERE grp = $1 AND name = $2 AND owner = $3`, group, name, owner); err != nil {
		return fmt.Errorf("lease release: %w", err)
	}
	return nil
}

// Holders lists the group's unexpired leases.
func (l *Leases) Holders(ctx context.Context, group string) (map[string]string, error) {
	pool, err := l.d.getLeases(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := pool.Query(ctx, `SELECT name, owner FROM `+l.d.leases+` WHERE grp = $1 AND expires_at > clock_timestamp()`, group)
	if err != nil {
		return nil, fmt.Errorf("lease list: %w", err)
	}
	out := map[string]string{}
	var name, owner string
	_, err = pgx.ForEachRow(rows, []any{&name, &owner}, func() error {
		out[name] = owner
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("lease list: %w", err)
	}
	return out, nil
}

// Close closes the pool.
func (l *Leases) Close() error { return l.d.close() }
