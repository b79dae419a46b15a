package store

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pipe-dsl/pipe/internal/lookup"
	"github.com/pipe-dsl/pipe/pipeline"
)

// errBadDSN replaces every DSN parse error, whose text could echo the secret.
var errBadDSN = errors.New("postgres: dsn is not a valid connection string (value not shown)")

// Postgres runs one query per group of keys: the user's query, which takes
// the keys as the array $1 (WHERE id = ANY($1)), wrapped so each row comes
// back as its key column's text and the row as JSON.
type Postgres struct {
	cfg *pgxpool.Config
	sql string

	mu     sync.Mutex
	pool   *pgxpool.Pool // opened by the first Fetch
	closed bool
}

var _ lookup.Store = (*Postgres)(nil)

// NewPostgres parses dsn (without connecting) and returns a store whose
// pool holds at most maxConns connections. appName labels the connections
// in pg_stat_activity unless the DSN names one.
func NewPostgres(dsn, query, keyColumn string, maxConns int, appName string) (*Postgres, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, errBadDSN
	}
	cfg.MaxConns = int32(max(maxConns, 1))
	cfg.MinConns = 0
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = appName
	}
	col := pgx.Identifier{keyColumn}.Sanitize()
	sql := fmt.Sprintf("SELECT (q.%s)::text, to_jsonb(q)::text FROM (%s) AS q", col, query)
	return &Postgres{cfg: cfg, sql: sql}, nil
}

func (p *Postgres) open() (*pgxpool.Pool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errors.New("postgres: store closed")
	}
	if p.pool == nil {
		pool, err := pgxpool.NewWithConfig(context.Background(), p.cfg)
		if err != nil {
			return nil, fmt.Errorf("postgres: %w", err)
		}
		p.pool = pool
	}
	return p.pool, nil
}

// Fetch runs the query with the group's keys: an int8[] when every key is
// an integer, a text[] otherwise.
func (p *Postgres) Fetch(ctx context.Context, reqs []lookup.Request) (map[string]any, error) {
	pool, err := p.open()
	if err != nil {
		return nil, err
	}
	rows, err := pool.Query(ctx, p.sql, keyArray(reqs))
	if err != nil {
		return nil, pgError(err)
	}
	defer rows.Close()
	out := make(map[string]any, len(reqs))
	for rows.Next() {
		var key *string
		var row string
		if err := rows.Scan(&key, &row); err != nil {
			return nil, fmt.Errorf("postgres: scan: %w", err)
		}
		if key != nil {
			out[*key] = decode(row)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, pgError(err)
	}
	return out, nil
}

func keyArray(reqs []lookup.Request) any {
	ints := make([]int64, 0, len(reqs))
	for _, r := range reqs {
		i, ok := r.Arg.(int64)
		if !ok {
			texts := make([]string, len(reqs))
			for j, r := range reqs {
				texts[j] = r.Key
			}
			return texts
		}
		ints = append(ints, i)
	}
	return ints
}

// pgError makes a server error that fails the same way every time (syntax,
// access, data, authorization, unknown database) permanent, so retry
// leaves it alone.
func pgError(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && len(pe.Code) == 5 {
		switch pe.Code[:2] {
		case "22", "28", "3D", "42":
			return pipeline.Permanent(fmt.Errorf("postgres: SQLSTATE %s: %s", pe.Code, pe.Message))
		}
		return fmt.Errorf("postgres: SQLSTATE %s: %s", pe.Code, pe.Message)
	}
	return fmt.Errorf("postgres: %w", err)
}

// Close closes the pool, waiting for connections in use to be returned.
func (p *Postgres) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if p.pool != nil {
		p.pool.Close()
	}
	return nil
}
