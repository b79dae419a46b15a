package bench

// Throughput of the lookup stage against local PostgreSQL and Redis
// (docs/lookup.md):
//
//	go test -run '^$' -bench 'Lookup' -benchtime 1x ./bench/
//	PIPE_LOOKUP_N=100000 go test ...   # fewer messages
//	bench/lookup_rounds.sh 10          # baseline and (c) interleaved, benchstat
//
// Each run sends N messages (default 1,000,000) whose keys cycle over
// 10,000 customers through `lookup` in three set-ups, and through the same
// pipeline without the lookup as the baseline. It reports msgs/s and round
// trips per message, and skips when a server is unreachable.

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	goredis "github.com/redis/go-redis/v9"

	"github.com/pipe-dsl/pipe/dsl"
	"github.com/pipe-dsl/pipe/pipeline"
)

const lookupKeys = 10000

func lookupN() int {
	if n, err := strconv.Atoi(os.Getenv("PIPE_LOOKUP_N")); err == nil && n > 0 {
		return n
	}
	return 1000000
}

// keySource sends n order bodies whose customer_id cycles over lookupKeys.
type keySource struct{ n int }

func (s keySource) Read(ctx context.Context, out pipeline.Outlet) error {
	bodies := make([][]byte, lookupKeys)
	for i := range bodies {
		bodies[i] = fmt.Appendf(nil, `{"id":%d,"customer_id":%d,"cents":%d}`, i, i+1, i*7)
	}
	for i := range s.n {
		if out.Send(ctx, pipeline.NewMessage(bodies[i%lookupKeys], nil)) != nil {
			return nil
		}
	}
	return nil
}

type countSink struct{ n atomic.Int64 }

func (c *countSink) Write(context.Context, *pipeline.Message) error { c.n.Add(1); return nil }

// runLookupBench runs n messages through stages and reports msgs/s and
// round trips per message.
func runLookupBench(b *testing.B, stages string, n int) {
	src := fmt.Sprintf("name: lkbench\nsource: {generate: {count: 1, message: '{}'}}\nstages:\n%s\nsink: {drop: {}}\n", stages)
	cfg, err := dsl.Parse("lkbench.yaml", []byte(src), nil)
	if err != nil {
		b.Fatal(err)
	}
	sink := &countSink{}
	c, err := dsl.Compile(cfg, &dsl.CompileOptions{Replace: func(nd *dsl.Node) (any, bool) {
		switch nd.Role {
		case pipeline.RoleSource:
			return keySource{n: n}, true
		case pipeline.RoleSink:
			return sink, true
		}
		return nil, false
	}})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	cpu0 := cpuTime(b)
	start := time.Now()
	if err := c.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	cpu := cpuTime(b) - cpu0
	b.StopTimer()
	if got := sink.n.Load(); got != int64(n) {
		b.Fatalf("sink got %d, want %d", got, n)
	}
	trips := 0.0
	for _, s := range c.Stats() {
		for _, f := range s.Figures {
			if s.Kind == "lookup" && f.Name == "round_trips" {
				trips = f.Value
			}
		}
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(trips/float64(n), "trips/msg")
	b.ReportMetric(elapsed.Seconds(), "s")
	b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(n), "cpu-µs/msg")
}

// cpuTime is the user and system CPU time the process has used so far. On
// a shared machine it moves much less than wall time with the other jobs'
// load, so cpu-µs/msg compares set-ups better than msgs/s does.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// lookupModes are the set-ups compared: (a) no cache, no coalescing; (b)
// coalescing only; (c) cache and coalescing.
var lookupModes = []struct{ name, extra string }{
	{"a_plain", ""},
	{"b_coalesce", "\n      coalesce: {max_keys: 64, max_wait: 1ms}"},
	{"c_cache_coalesce", "\n      coalesce: {max_keys: 64, max_wait: 1ms}\n      cache: {ttl: 5m, max_entries: 20000}"},
}

func BenchmarkLookupBaseline(b *testing.B) {
	runLookupBench(b, "  - map: 'msg'\n    workers: 64", lookupN())
}

func BenchmarkLookupPostgres(b *testing.B) {
	dsn := os.Getenv("PIPE_PG_DSN")
	if dsn == "" {
		dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dsn)
	if err == nil {
		err = pool.Ping(ctx)
	}
	if err != nil {
		b.Skipf("PostgreSQL not reachable: %v", err)
	}
	defer pool.Close()
	table := fmt.Sprintf("lk_bench_%d", time.Now().UnixNano())
	for _, sql := range []string{
		"CREATE TABLE " + table + " (id int PRIMARY KEY, name text, tier text)",
		fmt.Sprintf("INSERT INTO %s SELECT i, 'c'||i, CASE WHEN i %% 10 = 0 THEN 'gold' ELSE 'standard' END FROM generate_series(1, %d) i", table, lookupKeys),
	} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			b.Fatal(err)
		}
	}
	defer pool.Exec(ctx, "DROP TABLE "+table)
	for _, m := range lookupModes {
		b.Run(m.name, func(b *testing.B) {
			runLookupBench(b, fmt.Sprintf(`  - lookup:
      postgres: {dsn: %q, query: "SELECT id, tier FROM %s WHERE id = ANY($1)", key_column: id}
      key: msg.customer_id
      into: customer%s
      max_conns: 8
    workers: 64`, dsn, table, m.extra), lookupN())
		})
	}
}

func BenchmarkLookupRedis(b *testing.B) {
	ctx := context.Background()
	c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"})
	defer c.Close()
	if err := c.Ping(ctx).Err(); err != nil {
		b.Skipf("Redis not reachable: %v", err)
	}
	prefix := fmt.Sprintf("lkbench:%d:", time.Now().UnixNano())
	p := c.Pipeline()
	keys := make([]string, 0, lookupKeys)
	for i := 1; i <= lookupKeys; i++ {
		k := prefix + strconv.Itoa(i)
		keys = append(keys, k)
		p.Set(ctx, k, fmt.Sprintf(`{"tier":"t%d"}`, i%10), 0)
	}
	if _, err := p.Exec(ctx); err != nil {
		b.Fatal(err)
	}
	defer c.Del(ctx, keys...)
	for _, m := range lookupModes {
		b.Run(m.name, func(b *testing.B) {
			runLookupBench(b, fmt.Sprintf(`  - lookup:
      redis: {url: "redis://127.0.0.1:6379/0", key: '"%s" + string(key)'}
      key: msg.customer_id
      into: customer%s
      max_conns: 8
    workers: 64`, prefix, m.extra), lookupN())
		})
	}
}
