package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/expr"
	"github.com/pipe-dsl/pipe/pipeline"
)

type sinkConfig struct {
	DSN        string                   `pipe:"dsn,required,secret" desc:"PostgreSQL connection string (URL or key=value); never printed. Usually ${PG_DSN}." example:"${PG_DSN}"`
	Table      string                   `pipe:"table,required" desc:"Table to write, optionally schema-qualified (schema.table); quoted as identifiers." example:"orders"`
	Columns    map[string]*expr.Program `pipe:"columns,required" desc:"Column name to CEL expression over msg and meta giving its value; objects and lists are sent as JSON." example:"{id: msg.id, amount: msg.amount, trace: meta.traceparent}"`
	OnConflict []string                 `pipe:"on_conflict" desc:"Conflict target columns (a unique key) for an upsert; with no update list, conflicting rows are skipped (DO NOTHING)." example:"[id]"`
	Update     []string                 `pipe:"update" desc:"Columns overwritten from the new row on conflict (DO UPDATE SET col = EXCLUDED.col); needs on_conflict." example:"[amount]"`
	MaxConns   int                      `pipe:"max_conns" desc:"Most connections the sink's pool opens; sink workers beyond it wait for a connection." example:"4" min:"1"`
}

func init() {
	component.Register(component.Sink("postgres",
		"Inserts or upserts one row per message into a PostgreSQL table; a batch is written in one transaction, and only the members the table refuses (constraint, bad value, failing column expression) are dead-lettered.",
		sinkConfig{MaxConns: 4}, newSink))
}

// sink writes rows through a pool opened on the first Write.
type sink struct {
	table string
	cols  []string
	progs []*expr.Program
	sql   string
	cfg   *pgxpool.Config

	mu   sync.Mutex
	pool *pgxpool.Pool
}

var (
	_ pipeline.Sink    = (*sink)(nil)
	_ pipeline.Closer  = (*sink)(nil)
	_ pipeline.Checker = (*sink)(nil)
)

func newSink(c *sinkConfig, env component.Env) (pipeline.Sink, error) {
	if len(c.Columns) == 0 {
		return nil, errors.New("columns: needs at least one column")
	}
	if len(c.Update) > 0 && len(c.OnConflict) == 0 {
		return nil, errors.New("update: needs on_conflict")
	}
	s := &sink{table: c.Table, cols: slices.Sorted(maps.Keys(c.Columns))}
	for _, name := range slices.Concat(c.OnConflict, c.Update) {
		if c.Columns[name] == nil {
			return nil, fmt.Errorf("on_conflict/update: %q is not one of columns %v", name, s.cols)
		}
	}
	for _, col := range s.cols {
		s.progs = append(s.progs, c.Columns[col])
	}
	s.sql = insertSQL(c.Table, s.cols, c.OnConflict, c.Update)
	cfg, err := poolConfig(c.DSN, c.MaxConns, "pipe/"+env.Pipeline+"/"+env.Node)
	if err != nil {
		return nil, err
	}
	s.cfg = cfg
	return s, nil
}

// insertSQL builds INSERT INTO t (cols) VALUES ($1..) [ON CONFLICT ...].
func insertSQL(table string, cols, conflict, update []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "INSERT INTO %s (", ident(table))
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(pgx.Identifier{c}.Sanitize())
	}
	b.WriteString(") VALUES (")
	for i := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "$%d", i+1)
	}
	b.WriteString(")")
	if len(conflict) == 0 {
		return b.String()
	}
	b.WriteString(" ON CONFLICT (")
	for i, c := range conflict {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(pgx.Identifier{c}.Sanitize())
	}
	if len(update) == 0 {
		b.WriteString(") DO NOTHING")
		return b.String()
	}
	b.WriteString(") DO UPDATE SET ")
	for i, c := range update {
		if i > 0 {
			b.WriteString(", ")
		}
		q := pgx.Identifier{c}.Sanitize()
		fmt.Fprintf(&b, "%s = EXCLUDED.%s", q, q)
	}
	return b.String()
}

// Write inserts m's row, or each member's row of a batch in one
// transaction. A batch whose members the table refuses one by one (a
// failing column expression, a constraint violation or bad value: SQLSTATE
// classes 22 and 23) is written but for those members, which come back in
// a [pipeline.BatchError].
func (s *sink) Write(ctx context.Context, m *pipeline.Message) error {
	members := m.Batch()
	if members == nil {
		r, err := s.row(m)
		if err != nil {
			return err
		}
		pool, err := s.connect()
		if err != nil {
			return err
		}
		if _, err := pool.Exec(ctx, s.sql, r...); err != nil {
			return fmt.Errorf("postgres: write 1 row: %w", classify(err))
		}
		return nil
	}
	rows := make([][]any, len(members))
	errs := make([]error, len(members))
	b := &pgx.Batch{}
	for i, x := range members {
		if rows[i], errs[i] = s.row(x); errs[i] == nil {
			b.Queue(s.sql, rows[i]...)
		}
	}
	if b.Len() > 0 {
		pool, err := s.connect()
		if err != nil {
			return err
		}
		err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return tx.SendBatch(ctx, b).Close() })
		if err != nil && rowError(classify(err)) {
			err = s.writeEach(ctx, pool, rows, errs)
		}
		if err != nil {
			return fmt.Errorf("postgres: write %d row(s): %w", b.Len(), classify(err))
		}
	}
	if slices.ContainsFunc(errs, func(err error) bool { return err != nil }) {
		return &pipeline.BatchError{Errs: errs}
	}
	return nil
}

// writeEach writes rows (but those with an error already) in one
// transaction, each under its own savepoint, and records in errs the rows
// the table refuses. Any other error rolls everything back.
func (s *sink) writeEach(ctx context.Context, pool *pgxpool.Pool, rows [][]any, errs []error) error {
	refusedHere := make([]error, len(rows))
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		clear(refusedHere)
		for i, r := range rows {
			if errs[i] != nil {
				continue
			}
			err := pgx.BeginFunc(ctx, tx, func(sp pgx.Tx) error { // a savepoint
				_, err := sp.Exec(ctx, s.sql, r...)
				return err
			})
			if err == nil {
				continue
			}
			if err = classify(err); !rowError(err) {
				return err
			}
			refusedHere[i] = fmt.Errorf("postgres: write row: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i, e := range refusedHere {
		if e != nil {
			errs[i] = e
		}
	}
	return nil
}

// rowError reports an error caused by one row's values, which the other
// rows of its batch do not share: a data exception (SQLSTATE class 22), an
// integrity constraint violation (23), or a value pgx cannot encode.
func rowError(err error) bool {
	var pe *Error
	switch {
	case errors.As(err, &pe):
		c := pe.SQLState[:2]
		return c == "22" || c == "23"
	case pipeline.IsPermanent(err):
		return true
	}
	return false
}

// row evaluates the column expressions for one message.
func (s *sink) row(m *pipeline.Message) ([]any, error) {
	in := &expr.Input{Raw: m.Body, Meta: m.Meta, Decoded: m.Decoded()}
	vals := make([]any, len(s.progs))
	for i, p := range s.progs {
		v, err := p.EvalNative(in)
		if err != nil {
			return nil, pipeline.WithReason(pipeline.ReasonExpression, fmt.Errorf("postgres: column %q: %w", s.cols[i], err))
		}
		vals[i] = v
	}
	if in.Decoded != nil && m.Decoded() == nil {
		m.SetDecoded(in.Decoded)
	}
	return vals, nil
}

// connect returns the pool, creating it on first use. Creating a pool does
// not dial; the first query does.
func (s *sink) connect() (*pgxpool.Pool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pool == nil {
		p, err := pgxpool.NewWithConfig(context.Background(), s.cfg)
		if err != nil {
			return nil, fmt.Errorf("postgres: %w", err)
		}
		s.pool = p
	}
	return s.pool, nil
}

// checkTimeout bounds Check's connection and prepare.
const checkTimeout = 10 * time.Second

// Check prepares the insert statement, so the server reports a missing
// table or column, a refused login or an unknown database before anything
// is read. (A conflict target without a unique key is found only when the
// statement is planned, at the first write.) A server it cannot reach is not a
// failure: writes retry and dead-letter as usual.
func (s *sink) Check(ctx context.Context) error {
	pool, err := s.connect()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	conn, err := pool.Acquire(ctx)
	if err == nil {
		_, err = conn.Conn().Prepare(ctx, "", s.sql)
		conn.Release()
	}
	var pe *Error
	if err != nil && errors.As(classify(err), &pe) && !pe.Retryable() {
		return fmt.Errorf("table %s, columns %v: %w", s.table, s.cols, pe)
	}
	return nil
}

// Close closes the pool, waiting for connections in use to be released.
func (s *sink) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pool != nil {
		s.pool.Close()
		s.pool = nil
	}
	return nil
}
