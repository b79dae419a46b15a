package postgres

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/expr"
	"github.com/pipe-dsl/pipe/pipeline"
)

func compileColumns(t testing.TB, cols map[string]string) map[string]*expr.Program {
	t.Helper()
	out := map[string]*expr.Program{}
	for k, src := range cols {
		p, err := expr.Compile(src)
		if err != nil {
			t.Fatalf("Compile(%q): %v", src, err)
		}
		out[k] = p
	}
	return out
}

func newTestSink(t *testing.T, c sinkConfig, node string) *sink {
	t.Helper()
	s, err := newSink(&c, component.Env{Pipeline: "pgtest", Node: node})
	if err != nil {
		t.Fatalf("newSink: %v", err)
	}
	t.Cleanup(func() { _ = s.(*sink).Close(context.Background()) })
	return s.(*sink)
}

func batchOf(ids ...int) *pipeline.Message {
	var ms []*pipeline.Message
	for _, id := range ids {
		ms = append(ms, pipeline.NewMessage(fmt.Appendf(nil, `{"id": %d}`, id), nil))
	}
	return pipeline.NewBatch(ms)
}

func TestInsertSQLQuotesEveryIdentifier(t *testing.T) {
	got := insertSQL(`s.t"; DROP TABLE x; --`, []string{"a", `b"c`}, []string{"a"}, []string{`b"c`})
	want := `INSERT INTO "s"."t""; DROP TABLE x; --" ("a", "b""c") VALUES ($1, $2) ON CONFLICT ("a") DO UPDATE SET "b""c" = EXCLUDED."b""c"`
	if got != want {
		t.Fatalf("insertSQL =\n%s\nwant\n%s", got, want)
	}
	if got := insertSQL("t", []string{"a"}, []string{"a"}, nil); got != `INSERT INTO "t" ("a") VALUES ($1) ON CONFLICT ("a") DO NOTHING` {
		t.Fatalf("insertSQL without update = %s", got)
	}
}

func TestSinkWritesABatchInOneTransaction(t *testing.T) {
	pool := OpenDB(t)
	tbl := MakeTable(t, pool, "id bigint PRIMARY KEY")
	s := newTestSink(t, sinkConfig{DSN: DSN(), Table: tbl, Columns: compileColumns(t, map[string]string{"id": "msg.id"}), MaxConns: 2}, "batch")
	var all []int
	for i := 1; i <= 100; i++ {
		all = append(all, i)
	}
	if err := s.Write(context.Background(), batchOf(all...)); err != nil {
		t.Fatalf("Write(batch of 100): %v", err)
	}
	if n := QueryInt(t, pool, "SELECT count(*) FROM "+tbl); n != 100 {
		t.Fatalf("rows = %d, want 100", n)
	}
	if n := QueryInt(t, pool, "SELECT count(DISTINCT xmin::text) FROM "+tbl); n != 1 {
		t.Fatalf("transactions that wrote the batch = %d, want 1", n)
	}

	// A duplicate key in the middle of a batch refuses that member only.
	err := s.Write(context.Background(), batchOf(101, 102, 50, 103))
	var be *pipeline.BatchError
	if !errors.As(err, &be) || len(be.Errs) != 4 || be.Errs[0] != nil || be.Errs[1] != nil || be.Errs[3] != nil {
		t.Fatalf("Write(batch with duplicate) = %v, want a BatchError refusing member 2 only", err)
	}
	var pe *Error
	if !errors.As(be.Errs[2], &pe) || pe.SQLState != "23505" || pe.Retryable() {
		t.Fatalf("member 2's error = %v, want a non-retryable *Error with SQLSTATE 23505", be.Errs[2])
	}
	if n := QueryInt(t, pool, "SELECT count(*) FROM "+tbl+" WHERE id > 100"); n != 3 {
		t.Fatalf("rows of the batch with a duplicate = %d, want the other 3", n)
	}
}

func TestSinkExpressionErrorRefusesOnlyItsMember(t *testing.T) {
	pool := OpenDB(t)
	tbl := MakeTable(t, pool, "id bigint PRIMARY KEY")
	s := newTestSink(t, sinkConfig{DSN: DSN(), Table: tbl, Columns: compileColumns(t, map[string]string{"id": "msg.id"}), MaxConns: 1}, "expr")
	m := pipeline.NewBatch([]*pipeline.Message{
		pipeline.NewMessage([]byte(`{"id": 1}`), nil),
		pipeline.NewMessage([]byte(`{"other": 2}`), nil),
	})
	err := s.Write(context.Background(), m)
	var be *pipeline.BatchError
	if !errors.As(err, &be) || len(be.Errs) != 2 || be.Errs[0] != nil || pipeline.Reason(be.Errs[1]) != pipeline.ReasonExpression {
		t.Fatalf("Write = %v, want a BatchError refusing member 1 with reason %q", err, pipeline.ReasonExpression)
	}
	if n := QueryInt(t, pool, "SELECT count(*) FROM "+tbl); n != 1 {
		t.Fatalf("rows = %d, want 1", n)
	}
	// A batch whose every member fails its expression writes nothing.
	m = pipeline.NewBatch([]*pipeline.Message{pipeline.NewMessage([]byte(`{}`), nil)})
	if err := s.Write(context.Background(), m); !errors.As(err, &be) || be.Errs[0] == nil {
		t.Fatalf("Write(all bad) = %v, want a BatchError", err)
	}
}

// Eight concurrent writers share a pool of two: while a lock holds every
// insert, exactly two backends wait on it and the rest wait for the pool.
func TestSinkNeverOpensMoreThanMaxConns(t *testing.T) {
	pool := OpenDB(t)
	tbl := MakeTable(t, pool, "id bigint PRIMARY KEY")
	s := newTestSink(t, sinkConfig{DSN: DSN(), Table: tbl, Columns: compileColumns(t, map[string]string{"id": "msg.id"}), MaxConns: 2}, "maxconns-"+tbl)
	app := "pipe/pgtest/maxconns-" + tbl

	ctx := context.Background()
	lock, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback(ctx)
	if _, err := lock.Exec(ctx, "LOCK TABLE "+tbl+" IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	const writers = 8
	errs := make(chan error, writers)
	for i := 1; i <= writers; i++ {
		go func() { errs <- s.Write(ctx, pipeline.NewMessage(fmt.Appendf(nil, `{"id": %d}`, i), nil)) }()
	}
	waiting := func() int {
		return QueryInt(t, pool, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'", app)
	}
	deadline := time.Now().Add(10 * time.Second)
	for waiting() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("backends waiting on the lock = %d, want 2", waiting())
		}
	}
	st := s.pool.Stat()
	if st.TotalConns() != 2 || st.MaxConns() != 2 {
		t.Fatalf("pool conns = %d (max %d), want 2 (max 2)", st.TotalConns(), st.MaxConns())
	}
	if n := QueryInt(t, pool, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", app); n != 2 {
		t.Fatalf("server backends for the sink = %d, want 2", n)
	}
	if err := lock.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
	if n := QueryInt(t, pool, "SELECT count(*) FROM "+tbl); n != writers {
		t.Fatalf("rows = %d, want %d", n, writers)
	}
	if st := s.pool.Stat(); st.TotalConns() > 2 || st.EmptyAcquireCount() == 0 {
		t.Fatalf("after the writes: conns = %d, acquires that waited = %d; want <= 2 and > 0", st.TotalConns(), st.EmptyAcquireCount())
	}
}

// Rows per second through the sink: one INSERT per message against one
// pgx.Batch transaction per 100 messages.
func BenchmarkSinkWrite(b *testing.B) {
	for _, size := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			pool := OpenDB(b)
			tbl := MakeTable(b, pool, "id bigint PRIMARY KEY, doc jsonb")
			cols := compileColumns(b, map[string]string{"id": "msg.id", "doc": "msg"})
			sk, err := newSink(&sinkConfig{DSN: DSN(), Table: tbl, Columns: cols, MaxConns: 1}, component.Env{})
			if err != nil {
				b.Fatal(err)
			}
			defer sk.(*sink).Close(context.Background())
			ctx := context.Background()
			id := 0
			b.ResetTimer()
			for i := 0; i < b.N; i += size {
				ms := make([]*pipeline.Message, 0, size)
				for range min(size, b.N-i) {
					id++
					ms = append(ms, pipeline.NewMessage(fmt.Appendf(nil, `{"id": %d, "name": "x"}`, id), nil))
				}
				m := ms[0]
				if len(ms) > 1 {
					m = pipeline.NewBatch(ms)
				}
				if err := sk.Write(ctx, m); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

func TestSinkValueOfTheWrongTypeIsNotRetryable(t *testing.T) {
	pool := OpenDB(t)
	tbl := MakeTable(t, pool, "id bigint")
	s := newTestSink(t, sinkConfig{DSN: DSN(), Table: tbl, Columns: compileColumns(t, map[string]string{"id": "msg"}), MaxConns: 1}, "types")
	err := s.Write(context.Background(), pipeline.NewMessage([]byte(`{"a": 1}`), nil))
	var r interface{ Retryable() bool }
	if !errors.As(err, &r) || r.Retryable() {
		t.Fatalf("Write(object into bigint) = %v, want an error whose Retryable() is false", err)
	}
}
