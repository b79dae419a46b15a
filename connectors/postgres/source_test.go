package postgres

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/pipeline"
)

// runSource runs a pipeline of the postgres source into rec until rec holds
// want bodies, then stops it softly and waits for it to finish.
func runSource(t *testing.T, c sourceConfig, rec *Recorder, want int) {
	t.Helper()
	runSourceUntil(t, c, rec, func(b []string) bool { return len(b) >= want })
}

func runSourceUntil(t *testing.T, c sourceConfig, rec *Recorder, until func([]string) bool) {
	t.Helper()
	src, err := newSource(&c, component.Env{Pipeline: "pgtest", Node: "src"})
	if err != nil {
		t.Fatalf("newSource: %v", err)
	}
	p := pipeline.New("pgtest")
	if err := errors.Join(p.AddSource("src", "postgres", src), p.AddSink("rec", "recorder", rec, pipeline.NodeOptions{}), p.Connect("src", "", "rec")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	rec.WaitFor(t, until)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func sourceCfg(tbl, state string) sourceConfig {
	return sourceConfig{
		DSN: DSN(), Query: "SELECT id, name FROM " + tbl, Cursor: "id",
		Limit: 7, PollInterval: 5 * time.Millisecond, StateTable: state,
	}
}

func TestSourceRestartContinuesAfterTheStoredCursor(t *testing.T) {
	pool := OpenDB(t)
	tbl, state := rowsTable(t, pool, 50)

	first := NewRecorder()
	runSource(t, sourceCfg(tbl, state), first, 50)
	if got := Field(t, first.Bodies(), "id"); !slices.Equal(got, Seq(1, 50)) {
		t.Fatalf("first run ids = %v, want 1..50", got)
	}
	if c := storedCursor(t, pool, state); c != 50 {
		t.Fatalf("stored cursor after first run = %d, want 50", c)
	}

	Exec(t, pool, "INSERT INTO "+tbl+" SELECT i, 'n' || i FROM generate_series(51, 80) i")
	second := NewRecorder()
	runSource(t, sourceCfg(tbl, state), second, 30)
	if got := Field(t, second.Bodies(), "id"); !slices.Equal(got, Seq(51, 80)) {
		t.Fatalf("second run ids = %v, want 51..80", got)
	}
	if c := storedCursor(t, pool, state); c != 80 {
		t.Fatalf("stored cursor after second run = %d, want 80", c)
	}
}

func TestSourceNackHoldsTheCursorAndRedelivers(t *testing.T) {
	pool := OpenDB(t)
	tbl, state := rowsTable(t, pool, 30)

	rec := NewRecorder()
	var failed atomic.Bool
	var cursorAtRedelivery atomic.Int64
	rec.Fail = func(body string) error {
		if body == `{"id":20,"name":"n20"}` {
			if failed.CompareAndSwap(false, true) {
				return errors.New("first delivery of 20 fails")
			}
			cursorAtRedelivery.Store(int64(QueryInt(t, pool, "SELECT coalesce(max(cursor::int), 0) FROM "+state)))
		}
		return nil
	}
	// The source stops reading at the nack, waits for what it read to be
	// resolved, and reads again from 20.
	runSourceUntil(t, sourceCfg(tbl, state), rec, func(b []string) bool {
		return len(b) > 0 && b[len(b)-1] == `{"id":30,"name":"n30"}` && slices.Contains(b, `{"id":20,"name":"n20"}`)
	})
	if c := cursorAtRedelivery.Load(); c > 19 {
		t.Fatalf("stored cursor when 20 was redelivered = %d, want <= 19", c)
	}
	got := Field(t, rec.Bodies(), "id")
	i := slices.Index(got, 20)
	if !slices.Equal(got[:19], Seq(1, 19)) || !slices.Equal(got[i:], Seq(20, 30)) {
		t.Fatalf("delivered ids = %v, want 1..19, some of 21.., then 20..30", got)
	}
	if c := storedCursor(t, pool, state); c != 30 {
		t.Fatalf("stored cursor at the end = %d, want 30", c)
	}
}

func TestSourceUnackedRowsAreReadAgainAfterAHardStop(t *testing.T) {
	pool := OpenDB(t)
	tbl, state := rowsTable(t, pool, 10)

	// The sink accepts 1..4 and then blocks until the pipeline is killed.
	c := sourceCfg(tbl, state)
	src, err := newSource(&c, component.Env{Pipeline: "pgtest", Node: "src"})
	if err != nil {
		t.Fatal(err)
	}
	rec := NewRecorder()
	block := make(chan struct{})
	rec.Fail = func(body string) error {
		if len(rec.Bodies()) >= 4 {
			<-block
			return errors.New("killed")
		}
		return nil
	}
	p := pipeline.New("pgtest")
	p.DrainTimeout = time.Millisecond
	if err := errors.Join(p.AddSource("src", "postgres", src), p.AddSink("rec", "recorder", rec, pipeline.NodeOptions{}), p.Connect("src", "", "rec")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	rec.Wait(t, 4)
	p.Kill()
	close(block)
	cancel()
	<-done
	if c := storedCursor(t, pool, state); c != 4 {
		t.Fatalf("stored cursor after the kill = %d, want 4", c)
	}
	again := NewRecorder()
	runSource(t, sourceCfg(tbl, state), again, 6)
	if got := Field(t, again.Bodies(), "id"); !slices.Equal(got, Seq(5, 10)) {
		t.Fatalf("ids after restart = %v, want 5..10", got)
	}
}

func TestSourceBadQueryEndsReadWithTheSQLState(t *testing.T) {
	pool := OpenDB(t)
	state := MakeTable(t, pool, "x int") + "_state"
	t.Cleanup(func() { _, _ = pool.Exec(context.Background(), "DROP TABLE IF EXISTS "+state) })
	c := sourceCfg("pipe_no_such_table", state)
	c.Query += ";  "
	src, err := newSource(&c, component.Env{Pipeline: "pgtest", Node: "src"})
	if err != nil {
		t.Fatal(err)
	}
	err = src.Read(context.Background(), nil)
	var pe *Error
	if !errors.As(err, &pe) || pe.SQLState != "42P01" {
		t.Fatalf("Read = %v, want *Error with SQLSTATE 42P01 (undefined table)", err)
	}
}

func TestErrorsNeverShowThePassword(t *testing.T) {
	const secret = "hunter2-secret"
	dsn := "postgres://postgres:" + secret + "@127.0.0.1:1/test?connect_timeout=2"
	s, err := newSink(&sinkConfig{DSN: dsn, Table: "t", Columns: compileColumns(t, map[string]string{"id": "msg.id"}), MaxConns: 1}, component.Env{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.(*sink).Close(context.Background())
	err = s.Write(context.Background(), pipeline.NewMessage([]byte(`{"id": 1}`), nil))
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("Write to a closed port = %v; want an error without the password", err)
	}
	if _, err := newSink(&sinkConfig{DSN: "postgres://u:" + secret + "@h:notaport/db", Table: "t", Columns: compileColumns(t, map[string]string{"id": "msg.id"})}, component.Env{}); err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("newSink with a malformed DSN = %v; want an error without the password", err)
	}
}

// Rows per second from table to sink, pages of 500, cursor saved as it goes.
func BenchmarkSourceRead(b *testing.B) {
	pool := OpenDB(b)
	tbl := MakeTable(b, pool, "id bigint PRIMARY KEY, name text")
	state := tbl + "_state"
	b.Cleanup(func() { _, _ = pool.Exec(context.Background(), "DROP TABLE IF EXISTS "+state) })
	Exec(b, pool, "INSERT INTO "+tbl+" SELECT i, 'n' || i FROM generate_series(1, $1) i", b.N)
	c := sourceCfg(tbl, state)
	c.Limit = 500
	src, err := newSource(&c, component.Env{Pipeline: "pgbench", Node: "src"})
	if err != nil {
		b.Fatal(err)
	}
	rec := NewRecorder()
	p := pipeline.New("pgbench")
	if err := errors.Join(p.AddSource("src", "postgres", src), p.AddSink("rec", "recorder", rec, pipeline.NodeOptions{}), p.Connect("src", "", "rec")); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	for range b.N {
		<-rec.got
	}
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

func TestSourceTimestampCursorWithStart(t *testing.T) {
	pool := OpenDB(t)
	tbl := MakeTable(t, pool, "id int, at timestamptz PRIMARY KEY")
	state := tbl + "_state"
	t.Cleanup(func() { _, _ = pool.Exec(context.Background(), "DROP TABLE IF EXISTS "+state) })
	Exec(t, pool, "INSERT INTO "+tbl+" SELECT i, timestamptz '2026-01-01 00:00:00+00' + i * interval '1 minute' FROM generate_series(1, 20) i")
	c := sourceCfg(tbl, state)
	c.Query, c.Cursor, c.Start = "SELECT id, at FROM "+tbl, "at", "2026-01-01 00:10:00+00"
	rec := NewRecorder()
	runSource(t, c, rec, 10)
	if got := Field(t, rec.Bodies(), "id"); !slices.Equal(got, Seq(11, 20)) {
		t.Fatalf("ids = %v, want 11..20 (after start)", got)
	}
	Exec(t, pool, "INSERT INTO "+tbl+" VALUES (21, timestamptz '2026-01-01 00:21:00+00')")
	again := NewRecorder()
	runSource(t, c, again, 1)
	if got := Field(t, again.Bodies(), "id"); !slices.Equal(got, []int64{21}) {
		t.Fatalf("ids after restart = %v, want [21]", got)
	}
}

// rowsTable creates a table of rows (id, name) numbered 1..n, and names
// the source's state table, dropped when the test ends.
func rowsTable(t *testing.T, pool *pgxpool.Pool, n int) (tbl, state string) {
	t.Helper()
	tbl = MakeTable(t, pool, "id bigint PRIMARY KEY, name text")
	state = tbl + "_state"
	t.Cleanup(func() { _, _ = pool.Exec(context.Background(), "DROP TABLE IF EXISTS "+state) })
	Exec(t, pool, "INSERT INTO "+tbl+" SELECT i, 'n' || i FROM generate_series(1, $1) i", n)
	return tbl, state
}

// storedCursor is the cursor the source node pgtest/src stored in state.
func storedCursor(t *testing.T, pool *pgxpool.Pool, state string) int {
	t.Helper()
	return QueryInt(t, pool, "SELECT cursor::int FROM "+state+" WHERE key = 'pgtest/src'")
}
