package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/internal/backoff"
	"github.com/pipe-dsl/pipe/internal/watermark"
	"github.com/pipe-dsl/pipe/pipeline"
)

type sourceConfig struct {
	DSN          string        `pipe:"dsn,required,secret" desc:"PostgreSQL connection string (URL or key=value); never printed. Usually ${PG_DSN}." example:"${PG_DSN}"`
	Query        string        `pipe:"query,required" desc:"SELECT whose rows become messages, one JSON object per row (row_to_json). The source wraps it to filter and order by the cursor column." example:"SELECT id, customer, amount FROM orders"`
	Cursor       string        `pipe:"cursor,required" desc:"Column of the query that is unique and grows with every new row (a bigserial id, say); the source reads rows with cursor > the last committed one." example:"id"`
	Start        string        `pipe:"start" desc:"Cursor value to start after when no cursor is stored yet; empty reads from the first row." example:"0"`
	Limit        int           `pipe:"limit" desc:"Most rows read per query; a full page is followed at once by the next." example:"500" min:"1"`
	PollInterval time.Duration `pipe:"poll_interval" desc:"Pause after a query that returned less than a full page." example:"1s" min:"0.001"`
	StateTable   string        `pipe:"state_table" desc:"Table holding the committed cursor per pipeline and node, created if missing." example:"pipe_cursors"`
	StateKey     string        `pipe:"state_key" desc:"Row of the state table for this source; empty means <pipeline>/<node>." example:"orders-export"`
}

func init() {
	component.Register(component.Source("postgres",
		"Polls a PostgreSQL query by an increasing cursor column, one JSON message per row; the cursor is stored once every row up to it is acked.",
		sourceConfig{Limit: 500, PollInterval: time.Second, StateTable: "pipe_cursors"}, newSource))
}

// source polls q; marks tracks acks, and the committed cursor is the mark.
type source struct {
	cfg    sourceConfig
	key    string
	pool   *pgxpool.Config
	clock  pipeline.Clock
	logger *slog.Logger

	marks   watermark.Tracker[string]
	wake    chan struct{} // after a nack, every row read is resolved
	stopped atomic.Bool
	final   sync.Once
	conn    *pgxpool.Pool
	saved   string // last cursor written to the state table; Read's goroutine, then final's
}

var _ pipeline.Source = (*source)(nil)

func newSource(c *sourceConfig, env component.Env) (pipeline.Source, error) {
	if c.Cursor == "" {
		return nil, errors.New("cursor: needs a column name")
	}
	key := c.StateKey
	if key == "" {
		key = env.Pipeline + "/" + env.Node
	}
	cfg, err := poolConfig(c.DSN, 1, "pipe/"+key)
	if err != nil {
		return nil, err
	}
	logger := env.Logger
	if logger == nil {
		logger = slog.Default()
	}
	clock := env.Clock
	if clock == nil {
		clock = pipeline.SystemClock
	}
	return &source{cfg: *c, key: key, pool: cfg, clock: clock, logger: logger, wake: make(chan struct{}, 1)}, nil
}

// selectSQL wraps the user's query: rows after $1 (if after), in cursor order.
func (s *source) selectSQL(after bool) string {
	cur := "q." + ident(s.cfg.Cursor)
	where := ""
	if after {
		where = " WHERE " + cur + " > $1"
	}
	return fmt.Sprintf("SELECT row_to_json(q)::text, (%s)::text FROM (%s) AS q%s ORDER BY %s LIMIT %d",
		cur, strings.TrimRight(strings.TrimSpace(s.cfg.Query), ";"), where, cur, s.cfg.Limit)
}

// retry spaces out attempts after a connection or server error.
var retry = backoff.Policy{BaseDelay: 100 * time.Millisecond, MaxDelay: 30 * time.Second, Jitter: backoff.FullJitter}

// readState is Read's position between steps.
type readState struct {
	loaded bool
	pos    string // cursor of the last row sent
	has    bool   // pos is set; else read from the first row
	due    bool   // poll at the next step; else wait for the timer
	timer  pipeline.Timer
}

// Read polls until ctx is cancelled. The committed cursor is written to the
// state table as acks advance it, and a last time once every message read is
// resolved, which may be after Read returned. Connection and other
// retryable errors are logged and retried with backoff; a non-retryable
// one (a bad query, say) ends Read with the error.
func (s *source) Read(ctx context.Context, out pipeline.Outlet) error {
	pool, err := pgxpool.NewWithConfig(ctx, s.pool)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	s.conn = pool
	defer s.stop()
	st := &readState{due: true, timer: s.clock.NewTimer(s.cfg.PollInterval)}
	defer st.timer.Stop()
	failures := 0
	for ctx.Err() == nil {
		wait, err := s.step(ctx, out, st)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !retryable(err) {
				return err
			}
			failures++
			d := retry.Delay(failures, rand.Float64)
			s.logger.Warn("postgres source: retrying", "state_key", s.key, "attempt", failures, "in", d, "err", err)
			st.timer.Reset(d)
			select {
			case <-ctx.Done():
			case <-st.timer.C():
			}
			st.due = true
			continue
		}
		failures = 0
		if !wait {
			continue
		}
		select {
		case <-ctx.Done():
		case <-st.timer.C():
			st.due = true
		case <-s.wake:
		}
	}
	return nil
}

// step saves the mark and then rewinds, polls a page, or does nothing; wait
// is true when the next step should wait for the timer or an ack.
func (s *source) step(ctx context.Context, out pipeline.Outlet, st *readState) (wait bool, err error) {
	if !st.loaded {
		if st.pos, st.has, err = s.load(ctx); err != nil {
			return false, err
		}
		s.saved, st.loaded = st.pos, true
	}
	if err := s.save(ctx); err != nil {
		return false, err
	}
	switch {
	case s.marks.Failed() && s.marks.Unresolved() == 0:
		// Every row read is resolved: read again after the mark.
		if st.pos, st.has = s.marks.Rewind(); !st.has {
			st.loaded = false // back to the stored cursor or start
		}
		st.due = true
		return false, nil
	case st.due && !s.marks.Failed():
		n, last, err := s.poll(ctx, out, st.pos, st.has)
		if err != nil {
			return false, err
		}
		if n > 0 {
			st.pos, st.has = last, true
		}
		if n == s.cfg.Limit {
			return false, nil
		}
		st.due = false
		st.timer.Reset(s.cfg.PollInterval)
	}
	return true, nil
}

// poll reads one page after pos and sends its rows; it returns how many
// rows it sent and the cursor of the last.
func (s *source) poll(ctx context.Context, out pipeline.Outlet, pos string, has bool) (int, string, error) {
	var rows pgx.Rows
	var err error
	if has {
		rows, err = s.conn.Query(ctx, s.selectSQL(true), pos)
	} else {
		rows, err = s.conn.Query(ctx, s.selectSQL(false))
	}
	if err != nil {
		return 0, "", s.queryErr(ctx, err)
	}
	type row struct{ body, cur string }
	var page []row
	for rows.Next() {
		var r row
		var cur *string
		if err := rows.Scan(&r.body, &cur); err != nil {
			rows.Close()
			return 0, "", fmt.Errorf("postgres: scan: %w", err)
		}
		if cur == nil {
			rows.Close()
			return 0, "", pipeline.Permanent(fmt.Errorf("postgres: cursor column %q is NULL in a row", s.cfg.Cursor))
		}
		r.cur = *cur
		page = append(page, r)
	}
	if err := rows.Err(); err != nil {
		return 0, "", s.queryErr(ctx, err)
	}
	for i, r := range page {
		ticket := s.marks.Add(r.cur)
		m := pipeline.NewMessage([]byte(r.body), func(err error) { s.resolve(ticket, err) })
		if out.Send(ctx, m) != nil {
			return i, page[max(i-1, 0)].cur, nil
		}
	}
	if len(page) == 0 {
		return 0, "", nil
	}
	return len(page), page[len(page)-1].cur, nil
}

func (s *source) queryErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("postgres: query: %w", classify(err))
}

func (s *source) resolve(ticket uint64, err error) {
	if err != nil {
		s.marks.Nack(ticket)
	} else {
		s.marks.Ack(ticket)
	}
	if s.marks.Failed() && s.marks.Unresolved() == 0 {
		// Wake Read to rewind; marks are otherwise saved at its next step.
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	if s.stopped.Load() && s.marks.Unresolved() == 0 {
		s.final.Do(s.finish)
	}
}

// stop runs when Read returns: the final save happens now or on the last ack.
func (s *source) stop() {
	s.stopped.Store(true)
	if s.marks.Unresolved() == 0 {
		s.final.Do(s.finish)
	}
}

// finish saves the mark a last time and closes the pool.
func (s *source) finish() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.save(ctx); err != nil {
		s.logger.Error("postgres source: final cursor save failed; rows after the last saved cursor will be read again", "state_key", s.key, "err", err)
	}
	s.conn.Close()
}

// load creates the state table if needed and reads this source's cursor.
func (s *source) load(ctx context.Context) (string, bool, error) {
	tbl := ident(s.cfg.StateTable)
	_, err := s.conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+tbl+
		" (key text PRIMARY KEY, cursor text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())")
	if err != nil && ctx.Err() == nil {
		var pe *Error
		// Concurrent creators race on the catalog; the table exists either way.
		if !errors.As(classify(err), &pe) || (pe.SQLState != "23505" && pe.SQLState != "42P07") {
			return "", false, fmt.Errorf("postgres: create state table: %w", classify(err))
		}
	}
	var cur string
	err = s.conn.QueryRow(ctx, "SELECT cursor FROM "+tbl+" WHERE key = $1", s.key).Scan(&cur)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return s.cfg.Start, s.cfg.Start != "", nil
	case err != nil:
		if ctx.Err() != nil {
			return "", false, nil
		}
		return "", false, fmt.Errorf("postgres: read cursor: %w", classify(err))
	}
	return cur, true, nil
}

// save writes the mark if it moved since the last save.
func (s *source) save(ctx context.Context) error {
	mark, ok, _ := s.marks.Mark()
	if !ok || mark == s.saved {
		return nil
	}
	_, err := s.conn.Exec(ctx, "INSERT INTO "+ident(s.cfg.StateTable)+
		" (key, cursor) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET cursor = EXCLUDED.cursor, updated_at = now()",
		s.key, mark)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("postgres: save cursor: %w", classify(err))
	}
	s.saved = mark
	return nil
}
