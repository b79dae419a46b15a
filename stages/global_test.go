package stages_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"

	"github.com/pipe-dsl/pipe/dsl"
	"github.com/pipe-dsl/pipe/internal/servicetest"
	"github.com/pipe-dsl/pipe/internal/tcpproxy"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

// Tests of scope: global run two compiled pipelines in this process against
// the real Redis or PostgreSQL, as two replicas would.

const (
	redisAddr = "127.0.0.1:6379"
	pgAddr    = "127.0.0.1:5432"
)

func runID() string { return fmt.Sprintf("t%d", time.Now().UnixNano()) }

// redisState returns a state block for Redis at addr with a prefix unique
// to the test, whose keys are deleted afterwards.
func redisState(t *testing.T, addr string) string {
	t.Helper()
	rdb := goredis.NewClient(&goredis.Options{Addr: redisAddr})
	t.Cleanup(func() { rdb.Close() })
	if err := rdb.Ping(t.Context()).Err(); err != nil {
		servicetest.Unavailable(t, "Redis on "+redisAddr, err)
	}
	prefix := "pipe-test:" + runID() + ":"
	t.Cleanup(func() {
		if keys, _ := rdb.Keys(context.Background(), "*"+prefix+"*").Result(); len(keys) > 0 {
			rdb.Del(context.Background(), keys...)
		}
	})
	return fmt.Sprintf("state: {redis: {url: 'redis://%s/0', prefix: '%s'}}\n", addr, prefix)
}

// pgState returns a state block for PostgreSQL at addr with tables unique
// to the test, dropped afterwards.
func pgState(t *testing.T, addr string) string {
	t.Helper()
	dsn := "postgres://postgres@%s/test?sslmode=disable"
	conn, err := pgx.Connect(t.Context(), fmt.Sprintf(dsn, pgAddr))
	if err != nil {
		servicetest.Unavailable(t, "PostgreSQL on "+pgAddr, err)
	}
	conn.Close(context.Background())
	table := "pipe_test_" + runID()
	t.Cleanup(func() {
		if c, err := pgx.Connect(context.Background(), fmt.Sprintf(dsn, pgAddr)); err == nil {
			c.Exec(context.Background(), "DROP TABLE IF EXISTS "+table+", "+table+"_meta, "+table+"_keys")
			c.Close(context.Background())
		}
	})
	return fmt.Sprintf("state: {postgres: {dsn: '"+dsn+"', table: %s}}\n", addr, table)
}

// replica compiles src with its source and sink replaced by feed and sink.
func replica(t *testing.T, src string, feed *pipelinetest.Source, sink *pipelinetest.Sink) *dsl.Compiled {
	t.Helper()
	return compileGate(t, nil, src, feed, sink)
}

// runAll runs the pipelines to the end of their sources, together.
func runAll(t *testing.T, ps ...*dsl.Compiled) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(ps))
	for i, p := range ps {
		wg.Go(func() { errs[i] = p.Run(t.Context()) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
	}
}

// ids returns {"id": i} for i in [0, n) in a shuffled order.
func ids(n int, seed uint64) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(`{"id":%d}`, i)
	}
	r := rand.New(rand.NewPCG(seed, seed))
	r.Shuffle(n, func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func figure(p *dsl.Compiled, node, name string) float64 {
	for _, s := range p.Stats() {
		if s.Name == node {
			for _, f := range s.Figures {
				if f.Name == name {
					return f.Value
				}
			}
		}
	}
	return -1
}

// onceEach fails unless bodies hold each of n ids exactly once.
func onceEach(t *testing.T, n int, bodies []string) {
	t.Helper()
	seen := map[string]int{}
	for _, b := range bodies {
		seen[b]++
	}
	for i := range n {
		if b := fmt.Sprintf(`{"id":%d}`, i); seen[b] != 1 {
			t.Errorf("%s passed %d times, want once", b, seen[b])
		}
	}
	if len(bodies) != n {
		t.Errorf("%d messages passed, want %d", len(bodies), n)
	}
}

func allAcked(t *testing.T, feeds ...*pipelinetest.Source) {
	t.Helper()
	for i, f := range feeds {
		if a, n := len(f.Acked()), len(f.Bodies); a != n || len(f.Nacked()) != 0 {
			t.Errorf("replica %d: %d of %d acked, nacked %v", i, a, n, f.Nacked())
		}
	}
}

func TestGivenTwoReplicasWithGlobalDedupeWhenBothSeeEveryKeyThenEachKeyPassesOnce(t *testing.T) {
	for name, block := range map[string]func(*testing.T, string) string{"redis": redisState, "postgres": pgState} {
		t.Run(name, func(t *testing.T) {
			const n = 300
			src := block(t, map[string]string{"redis": redisAddr, "postgres": pgAddr}[name]) +
				"source: {generate: {message: '1'}}\nstages:\n  - dedupe: {key: msg.id, ttl: 1h, scope: global}\n    workers: 4\nsink: {drop: {}}\n"
			feedA, feedB := pipelinetest.NewSource(ids(n, 1)...), pipelinetest.NewSource(ids(n, 2)...)
			sinkA, sinkB := &pipelinetest.Sink{}, &pipelinetest.Sink{}
			a, b := replica(t, src, feedA, sinkA), replica(t, src, feedB, sinkB)
			runAll(t, a, b)
			onceEach(t, n, append(sinkA.Bodies(), sinkB.Bodies()...))
			allAcked(t, feedA, feedB)
			if pa, pb := figure(a, "dedupe", "passed"), figure(b, "dedupe", "passed"); pa+pb != n {
				t.Errorf("passed figures %v + %v, want %d", pa, pb, n)
			}
		})
	}
}

func TestGivenGlobalDedupeWhenTheStoreConnectionIsCutMidRunThenNothingIsLostOrPassedTwice(t *testing.T) {
	for name, store := range map[string]struct {
		addr  string
		block func(*testing.T, string) string
	}{"redis": {redisAddr, redisState}, "postgres": {pgAddr, pgState}} {
		t.Run(name, func(t *testing.T) {
			const n = 200
			proxy := tcpproxy.New(t, store.addr)
			src := store.block(t, proxy.Addr()) +
				"source: {generate: {message: '1'}}\nstages:\n  - dedupe: {key: msg.id, ttl: 1h, scope: global}\nsink: {drop: {}}\n"
			bodies := append(ids(n, 3), ids(n, 4)...) // every id twice
			feed, sink := pipelinetest.NewSource(bodies...), &pipelinetest.Sink{Gate: make(chan struct{})}
			p := replica(t, src, feed, sink)
			done := make(chan error, 1)
			go func() { done <- p.Run(t.Context()) }()
			sink.Gate <- struct{}{}
			sink.Gate <- struct{}{} // two messages have passed their claims
			proxy.Cut(true)
			close(sink.Gate)
			waitFor(t, "the store breaker to open", func() bool { return figure(p, "dedupe", "store_breaker_opened") >= 1 })
			if got := feed.Acked(); len(got) >= len(bodies) {
				t.Fatalf("all %d acked while the store was down", len(got))
			}
			proxy.Restore()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			onceEach(t, n, sink.Bodies())
			allAcked(t, feed)
			if f := figure(p, "dedupe", "store_failures"); f < 5 {
				t.Errorf("store_failures = %v, want >= 5 (the breaker opened)", f)
			}
		})
	}
}

func TestGivenTwoReplicasWithGlobalThrottleWhenBothFloodThenTogetherTheyAdmitOneBurst(t *testing.T) {
	// rate 0.001/s: the timeline refills one message per 1000s, so during
	// the test the two replicas together may admit the burst and no more;
	// each alone would admit a whole burst.
	const n, burst = 300, 40
	src := redisState(t, redisAddr) +
		fmt.Sprintf("source: {generate: {message: '1'}}\nstages:\n  - throttle: {rate: 0.001, burst: %d, on_limit: drop, scope: global}\n    workers: 4\nsink: {drop: {}}\n", burst)
	feedA, feedB := pipelinetest.NewSource(ids(n, 5)...), pipelinetest.NewSource(ids(n, 6)...)
	sinkA, sinkB := &pipelinetest.Sink{}, &pipelinetest.Sink{}
	a, b := replica(t, src, feedA, sinkA), replica(t, src, feedB, sinkB)
	runAll(t, a, b)
	if got := len(sinkA.Bodies()) + len(sinkB.Bodies()); got != burst {
		t.Errorf("admitted %d + %d = %d, want %d", len(sinkA.Bodies()), len(sinkB.Bodies()), got, burst)
	}
	allAcked(t, feedA, feedB)
}

func TestScopeGlobalIsRefusedWhereItCannotWork(t *testing.T) {
	const base = "source: {generate: {message: '1'}}\nsink: {drop: {}}\n"
	for _, tc := range []struct{ name, src, want string }{
		{"dedupe without a state block", base + "stages:\n  - dedupe: {key: msg.id, scope: global}\n",
			"p.yaml:4:5: dedupe: scope: global needs a top-level state: block"},
		{"throttle without a state block", base + "stages:\n  - throttle: {rate: 1, scope: global}\n",
			"p.yaml:4:5: throttle: scope: global needs a top-level state: block"},
		{"throttle on postgres state", base + "state: {postgres: {dsn: 'postgres://h/db'}}\nstages:\n  - throttle: {rate: 1, scope: global}\n",
			"throttle: scope: global throttle needs state: redis"},
		{"a sliding window", base + "state: {redis: {url: 'redis://h'}}\nstages:\n  - throttle: {algorithm: sliding_window, limit: 3, window: 1s, scope: global}\n",
			"scope: global supports algorithm token_bucket"},
		{"an unknown scope", base + "stages:\n  - dedupe: {key: msg.id, scope: cluster}\n", "cluster"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := dsl.Parse("p.yaml", []byte(tc.src), nil)
			if err == nil {
				_, err = dsl.Compile(c, nil)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// waitFor polls cond until it holds; it synchronises with another
// goroutine's progress and asserts nothing about time.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestGivenGlobalThrottleThatBlocksWhenOverTheLimitThenEveryMessagePassesAfterWaiting(t *testing.T) {
	// 5/s with burst 1: the first passes at once, the next arrives well
	// within 200ms and waits for its slot on the store's timeline; none is
	// dropped.
	const n = 3
	src := redisState(t, redisAddr) +
		"source: {generate: {message: '1'}}\nstages:\n  - throttle: {rate: 5, burst: 1, on_limit: block, scope: global}\nsink: {drop: {}}\n"
	feed, sink := pipelinetest.NewSource(ids(n, 7)...), &pipelinetest.Sink{}
	p := replica(t, src, feed, sink)
	runAll(t, p)
	if got := len(sink.Bodies()); got != n {
		t.Fatalf("%d passed, want all %d", got, n)
	}
	allAcked(t, feed)
	if d := figure(p, "throttle", "delayed"); d < 1 {
		t.Errorf("delayed = %v, want >= 1: the burst is 1", d)
	}
}

func TestGivenGlobalThrottleWhenTheStoreConnectionIsCutMidRunThenTheSharedLimitHolds(t *testing.T) {
	// burst 40, no refill during the test; one worker, so at most one call
	// is in flight when the connection drops: its retry may count one
	// admission twice (strict side), never admit beyond the burst.
	const n, burst = 200, 40
	proxy := tcpproxy.New(t, redisAddr)
	src := redisState(t, proxy.Addr()) +
		fmt.Sprintf("source: {generate: {message: '1'}}\nstages:\n  - throttle: {rate: 0.001, burst: %d, on_limit: drop, scope: global}\nsink: {drop: {}}\n", burst)
	feed, sink := pipelinetest.NewSource(ids(n, 8)...), &pipelinetest.Sink{Gate: make(chan struct{})}
	p := replica(t, src, feed, sink)
	done := make(chan error, 1)
	go func() { done <- p.Run(t.Context()) }()
	sink.Gate <- struct{}{}
	sink.Gate <- struct{}{}
	proxy.Cut(true)
	close(sink.Gate)
	waitFor(t, "the store breaker to open", func() bool { return figure(p, "throttle", "store_breaker_opened") >= 1 })
	proxy.Restore()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := len(sink.Bodies()); got > burst || got < burst-1 {
		t.Errorf("admitted %d, want %d (or one less: a retried call counted twice)", got, burst)
	}
	allAcked(t, feed)
}
