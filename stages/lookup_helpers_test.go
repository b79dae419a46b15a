package stages_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	goredis "github.com/redis/go-redis/v9"

	"github.com/pipe-dsl/pipe/dsl"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

// unavailable skips a test whose service is down, or fails it when
// PIPE_REQUIRE_SERVICES=1.
func unavailable(t testing.TB, service string, err error) {
	t.Helper()
	if os.Getenv("PIPE_REQUIRE_SERVICES") == "1" {
		t.Fatalf("%s is required (PIPE_REQUIRE_SERVICES=1): %v", service, err)
	}
	t.Skipf("%s is not reachable: %v (PIPE_REQUIRE_SERVICES=1 makes this a failure)", service, err)
}

func pgDSN() string {
	if d := os.Getenv("PIPE_PG_DSN"); d != "" {
		return d
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

func openPG(t testing.TB) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, pgDSN())
	if err == nil {
		err = pool.Ping(ctx)
	}
	if err != nil {
		if pool != nil {
			pool.Close()
		}
		unavailable(t, "PostgreSQL at PIPE_PG_DSN or 127.0.0.1:5432", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func pgExec(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func pgInt(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// customers creates a table of n customers (id 1..n, tier gold for even
// ids, silver for odd) and a sequence the lookup query advances once per
// query, so the server counts the round trips. It returns the table and
// sequence names, dropped after the test.
func customers(t testing.TB, pool *pgxpool.Pool, n int) (table, seq string) {
	t.Helper()
	sfx := fmt.Sprintf("%d_%d", time.Now().UnixNano(), rand.IntN(1e6))
	table, seq = "lk_customers_"+sfx, "lk_trips_"+sfx
	pgExec(t, pool, "CREATE TABLE "+table+" (id int PRIMARY KEY, name text, tier text)")
	pgExec(t, pool, "CREATE SEQUENCE "+seq)
	t.Cleanup(func() {
		_, _ = pool.Exec(context.Background(), "DROP TABLE IF EXISTS "+table)
		_, _ = pool.Exec(context.Background(), "DROP SEQUENCE IF EXISTS "+seq)
	})
	pgExec(t, pool, "INSERT INTO "+table+" SELECT i, 'c'||i, CASE WHEN i % 2 = 0 THEN 'gold' ELSE 'silver' END FROM generate_series(1, $1) i", n)
	return table, seq
}

// pgQuery is a lookup query over table that advances seq once per query.
func pgQuery(table, seq string) string {
	return fmt.Sprintf("SELECT c.id, c.tier FROM %s c, (SELECT nextval('%s')) AS trip WHERE c.id = ANY($1)", table, seq)
}

// queries returns how many lookup queries ran against seq.
func queries(t testing.TB, pool *pgxpool.Pool, seq string) int {
	t.Helper()
	return pgInt(t, pool, "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM "+seq)
}

func openRedis(t testing.TB) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		unavailable(t, "Redis at 127.0.0.1:6379", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// lookupRun is the outcome of a run: the sink's bodies in order, the dead
// letters, and the lookup node's figures by name.
type lookupRun struct {
	out     []string
	dls     []pipeline.DeadLetter
	figures map[string]float64
}

// compileLookup builds `source -> stages -> sink` from YAML, the stage
// list given as YAML lines, with bodies as the source.
func compileLookup(t testing.TB, name, stages string, clock pipeline.Clock, bodies ...string) (*dsl.Compiled, *pipelinetest.Sink, *pipelinetest.Sink) {
	t.Helper()
	return compileLookupWith(t, name, stages, clock, pipelinetest.NewSource(bodies...))
}

// compileLookupWith is compileLookup with a source of the caller's.
func compileLookupWith(t testing.TB, name, stages string, clock pipeline.Clock, source pipeline.Source) (*dsl.Compiled, *pipelinetest.Sink, *pipelinetest.Sink) {
	t.Helper()
	src := fmt.Sprintf("name: %s\nsource: {generate: {count: 1, message: '{}'}}\nstages:\n%s\nsink: {stdout: {}}\ndead_letter: {stdout: {}}\n", name, stages)
	cfg, err := dsl.Parse(name+".yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	out, dlq := &pipelinetest.Sink{}, &pipelinetest.Sink{}
	c, err := dsl.Compile(cfg, &dsl.CompileOptions{Clock: clock, Replace: func(n *dsl.Node) (any, bool) {
		switch {
		case n.Role == pipeline.RoleSource:
			return source, true
		case n == cfg.DeadLetter:
			return dlq, true
		case n.Role == pipeline.RoleSink:
			return out, true
		}
		return nil, false
	}})
	if err != nil {
		t.Fatal(err)
	}
	return c, out, dlq
}

// runLookup runs the pipeline of compileLookup to its end.
func runLookup(t testing.TB, name, stages string, bodies ...string) lookupRun {
	t.Helper()
	c, out, dlq := compileLookup(t, name, stages, nil, bodies...)
	if err := c.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	return collect(t, c, out, dlq)
}

func collect(t testing.TB, c *dsl.Compiled, out, dlq *pipelinetest.Sink) lookupRun {
	t.Helper()
	r := lookupRun{out: out.Bodies(), figures: map[string]float64{}}
	for _, b := range dlq.Bodies() {
		var dl pipeline.DeadLetter
		if err := json.Unmarshal([]byte(b), &dl); err != nil {
			t.Fatal(err)
		}
		r.dls = append(r.dls, dl)
	}
	for _, s := range c.Stats() {
		if s.Kind == "lookup" {
			for _, f := range s.Figures {
				r.figures[f.Name] = f.Value
			}
		}
	}
	return r
}

// orders returns n bodies {"seq": i, "customer_id": key(i)}.
func orders(n int, key func(i int) int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(`{"seq":%d,"customer_id":%d}`, i, key(i))
	}
	return out
}

// peak samples count every millisecond until stop is closed; the func it
// returns waits for the sampler to end and gives the largest value seen.
func peak(count func() int, stop <-chan struct{}) func() int {
	most := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			most = max(most, count())
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return func() int {
		<-done
		return most
	}
}
