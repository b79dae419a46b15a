package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pipe-dsl/pipe/connectors/internal/conntest"
	"github.com/pipe-dsl/pipe/pipeline"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// DSN is the server the tests use: PIPE_PG_DSN, or the local one.
func DSN() string {
	if d := os.Getenv("PIPE_PG_DSN"); d != "" {
		return d
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// OpenDB connects to the test server, skipping the test when it is unreachable
// unless PIPE_REQUIRE_SERVICES=1.
func OpenDB(t testing.TB) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, DSN())
	if err == nil {
		err = pool.Ping(ctx)
	}
	if err != nil {
		if pool != nil {
			pool.Close()
		}
		conntest.Unavailable(t, "PostgreSQL at PIPE_PG_DSN or 127.0.0.1:5432", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

var tableSeq atomic.Int64

// MakeTable creates a uniquely named table from a column list and drops it after the test.
func MakeTable(t testing.TB, pool *pgxpool.Pool, cols string) string {
	t.Helper()
	name := fmt.Sprintf("pipe_test_%d_%d", time.Now().UnixNano(), tableSeq.Add(1))
	Exec(t, pool, "CREATE TABLE "+name+" ("+cols+")")
	t.Cleanup(func() {
		_, _ = pool.Exec(context.Background(), "DROP TABLE IF EXISTS "+name)
	})
	return name
}

func Exec(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func QueryInt(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func QueryIDs(t *testing.T, pool *pgxpool.Pool, sql string) []int64 {
	t.Helper()
	rows, err := pool.Query(context.Background(), sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return got
}

// Recorder is a sink that records bodies (each member of a batch) and
// signals each delivery.
type Recorder struct {
	mu     sync.Mutex
	bodies []string
	got    chan struct{}
	// Fail, if set, may reject a body before it is recorded.
	Fail func(body string) error
}

func NewRecorder() *Recorder { return &Recorder{got: make(chan struct{}, 1<<16)} }

func (r *Recorder) Write(_ context.Context, m *pipeline.Message) error {
	msgs := m.Batch()
	if msgs == nil {
		msgs = []*pipeline.Message{m}
	}
	for _, x := range msgs {
		if r.Fail != nil {
			if err := r.Fail(string(x.Body)); err != nil {
				return err
			}
		}
	}
	for _, x := range msgs {
		r.mu.Lock()
		r.bodies = append(r.bodies, string(x.Body))
		r.mu.Unlock()
		r.got <- struct{}{}
	}
	return nil
}

func (r *Recorder) Bodies() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bodies...)
}

// Wait blocks until the Recorder holds n bodies or the test times out.
func (r *Recorder) Wait(t *testing.T, n int) {
	t.Helper()
	r.WaitFor(t, func(b []string) bool { return len(b) >= n })
}

// WaitFor blocks until done holds for the recorded bodies or the test times out.
func (r *Recorder) WaitFor(t *testing.T, done func([]string) bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for !done(r.Bodies()) {
		select {
		case <-r.got:
		case <-deadline:
			t.Fatalf("Recorder has %d bodies, condition not met: %q", len(r.Bodies()), r.Bodies())
		}
	}
}

// Field decodes one numeric field of each JSON body.
func Field(t *testing.T, bodies []string, name string) []int64 {
	t.Helper()
	out := make([]int64, len(bodies))
	for i, b := range bodies {
		var v map[string]any
		if err := json.Unmarshal([]byte(b), &v); err != nil {
			t.Fatalf("body %q: %v", b, err)
		}
		f, ok := v[name].(float64)
		if !ok {
			t.Fatalf("body %q has no number %s", b, name)
		}
		out[i] = int64(f)
	}
	return out
}

func Seq(from, to int64) []int64 {
	var out []int64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}
