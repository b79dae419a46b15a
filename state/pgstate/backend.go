// Package pgstate keeps pipe's durable state in PostgreSQL: checkpoints
// committed in one transaction that locks the scope's epoch row (fencing),
// and dedupe claims by INSERT ... ON CONFLICT with an expiry. It has no
// store-side rate limiter: global throttle needs Redis.
package pgstate

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pipe-dsl/pipe/state"
)

// Backend is the `state: {postgres: {dsn, table}}` block. Opening does no
// I/O: the pool is made and the tables created on first use.
type Backend struct {
	// DSN is a libpq URL or key=value string; it may hold a password, so
	// it is never printed.
	DSN string
	// Table names the checkpoint table; <table>_meta holds epochs,
	// <table>_keys dedupe claims and <table>_leases partition leases
	// (created only when leases are used).
	// Default pipe_state.
	Table string
	// Interval is checkpoint_interval; 0 means the default.
	Interval time.Duration
}

var _ state.Backend = (*Backend)(nil)

var ident = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,40}(\.[A-Za-z_][A-Za-z0-9_]{0,40})?$`)

// CheckTable reports whether name is a usable table name.
func CheckTable(name string) error {
	if !ident.MatchString(name) {
		return fmt.Errorf("state.postgres.table: %q is not a plain identifier (letters, digits, _; optionally schema.table)", name)
	}
	return nil
}

// CheckDSN reports whether dsn parses; the error names no part of dsn.
func CheckDSN(dsn string) error {
	if _, err := pgxpool.ParseConfig(dsn); err != nil {
		return errors.New("state.postgres.dsn: not a valid PostgreSQL connection string")
	}
	return nil
}

// Kind returns "postgres".
func (b *Backend) Kind() string { return "postgres" }

// CheckpointInterval returns Interval or the default.
func (b *Backend) CheckpointInterval() time.Duration {
	if b.Interval <= 0 {
		return state.DefaultCheckpointInterval
	}
	return b.Interval
}

func (b *Backend) db() (*db, error) {
	table := b.Table
	if table == "" {
		table = "pipe_state"
	}
	if err := CheckTable(table); err != nil {
		return nil, err
	}
	if err := CheckDSN(b.DSN); err != nil {
		return nil, err
	}
	q := func(suffix string) string { return pgx.Identifier(strings.Split(table+suffix, ".")).Sanitize() }
	return &db{dsn: b.DSN, cp: q(""), meta: q("_meta"), keys: q("_keys"), leases: q("_leases")}, nil
}

// OpenStore returns the checkpoint store.
func (b *Backend) OpenStore() (state.Store, error) {
	d, err := b.db()
	if err != nil {
		return nil, err
	}
	return &Store{d}, nil
}

// OpenShared returns the dedupe claims.
func (b *Backend) OpenShared() (state.Shared, error) {
	d, err := b.db()
	if err != nil {
		return nil, err
	}
	return &Shared{d: d, every: sweepEvery, now: time.Now}, nil
}

// OpenLimiter fails: PostgreSQL state has no shared rate limiter.
func (b *Backend) OpenLimiter() (state.Limiter, error) {
	return nil, fmt.Errorf("%w: scope: global throttle needs state: redis (GCRA in Redis)", state.ErrNoLimiter)
}

// db is a lazily opened pool and the quoted table names.
type db struct {
	dsn            string
	cp, meta, keys string
	leases         string
	mu             sync.Mutex
	pool           *pgxpool.Pool
	ready          bool
	leasesReady    bool
}

// get opens the pool and creates the tables on first use.
func (d *db) get(ctx context.Context) (*pgxpool.Pool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pool == nil {
		cfg, err := pgxpool.ParseConfig(d.dsn)
		if err != nil {
			return nil, errors.New("state.postgres.dsn: not a valid PostgreSQL connection string")
		}
		cfg.MaxConns = 4
		if d.pool, err = pgxpool.NewWithConfig(context.WithoutCancel(ctx), cfg); err != nil {
			return nil, fmt.Errorf("open state store: %w", err)
		}
	}
	if !d.ready {
		ddl := `CREATE TABLE IF NOT EXISTS ` + d.cp + ` (scope text NOT NULL, kind text NOT NULL, name text NOT NULL, value bytea NOT NULL, PRIMARY KEY (scope, kind, name));
CREATE TABLE IF NOT EXISTS ` + d.meta + ` (scope text PRIMARY KEY, epoch bigint NOT NULL, seq bigint NOT NULL);
CREATE TABLE IF NOT EXISTS ` + d.keys + ` (key text PRIMARY KEY, token text NOT NULL, expires_at timestamptz)`
		if _, err := d.pool.Exec(ctx, ddl); err != nil && !raced(err) {
			return nil, fmt.Errorf("create state tables: %w", err)
		}
		d.ready = true
	}
	return d.pool, nil
}

// getLeases is get, and creates the lease table on first use (only
// pipelines with partitioned sources have one).
func (d *db) getLeases(ctx context.Context) (*pgxpool.Pool, error) {
	pool, err := d.get(ctx)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.leasesReady {
		ddl := `CREATE TABLE IF NOT EXISTS ` + d.leases + ` (grp text NOT NULL, name text NOT NULL, owner text NOT NULL, expires_at timestamptz NOT NULL, PRIMARY KEY (grp, name))`
		if _, err := pool.Exec(ctx, ddl); err != nil && !raced(err) {
			return nil, fmt.Errorf("create lease table: %w", err)
		}
		d.leasesReady = true
	}
	return pool, nil
}

// raced reports a concurrent CREATE TABLE IF NOT EXISTS by another process
// (unique violation in the catalog, table or its row type already there).
func raced(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "23505" || pe.Code == "42P07" || pe.Code == "42710")
}

func (d *db) close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pool != nil {
		d.pool.Close()
		d.pool = nil
	}
	return nil
}

// OpenLeases returns the partition leases.
func (b *Backend) OpenLeases() (state.Leases, error) {
	d, err := b.db()
	if err != nil {
		return nil, err
	}
	return &Leases{d}, nil
}
