package nats_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"

	"github.com/pipe-dsl/pipe/connectors/internal/conntest"
	"github.com/pipe-dsl/pipe/dsl"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/state"
	"github.com/pipe-dsl/pipe/state/pgstate"
	"github.com/pipe-dsl/pipe/state/redisstate"
)

// got is what one replica's sink received: partition meta by subject,
// and the partitions it saw.
type got struct {
	mu     sync.Mutex
	n      int
	parts  map[string]int    // nats_partition -> messages
	epochs map[string]string // nats_partition -> nats_read_epoch
	bad    []string
}

func (g *got) Write(_ context.Context, m *pipeline.Message) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n++
	p := m.Meta["nats_partition"]
	if sub := m.Meta["nats_subject"]; !strings.Contains(sub, "."+p+".") {
		g.bad = append(g.bad, fmt.Sprintf("subject %s has nats_partition %q", sub, p))
	}
	g.parts[p]++
	if e, seen := g.epochs[p]; seen && e != m.Meta["nats_read_epoch"] || m.Meta["nats_read_epoch"] == "" {
		g.bad = append(g.bad, fmt.Sprintf("partition %s: read epoch %q after %q", p, m.Meta["nats_read_epoch"], e))
	}
	g.epochs[p] = m.Meta["nats_read_epoch"]
	return nil
}

// take returns and resets what was received.
func (g *got) take() (int, map[string]int, []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	n, parts, bad := g.n, g.parts, g.bad
	g.n, g.parts, g.bad = 0, map[string]int{}, nil
	return n, parts, bad
}

func (g *got) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n
}

// figure returns the source's figure named name (-1: none).
func figure(stats []pipeline.NodeStats, name string) float64 {
	for _, n := range stats {
		if n.Name != "source" {
			continue
		}
		for _, f := range n.Figures {
			if f.Name == name {
				return f.Value
			}
		}
	}
	return -1
}

// waitFor polls cond every 20ms for up to 20s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// redisState returns a state block on the test Redis with a prefix of its
// own (deleted after the test), and its leases.
func redisState(t *testing.T, id string) (string, state.Leases) {
	rdb := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"})
	t.Cleanup(func() { rdb.Close() })
	if err := rdb.Ping(t.Context()).Err(); err != nil {
		conntest.Unavailable(t, "Redis on 127.0.0.1:6379", err)
	}
	prefix := "pipe-test:" + id + ":"
	t.Cleanup(func() {
		if ks, _ := rdb.Keys(context.Background(), prefix+"*").Result(); len(ks) > 0 {
			rdb.Del(context.Background(), ks...)
		}
	})
	b := &redisstate.Backend{URL: "redis://127.0.0.1:6379/0", Prefix: prefix}
	leases, err := b.OpenLeases()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { leases.Close() })
	return fmt.Sprintf("redis: {url: %q, prefix: %q}", b.URL, prefix), leases
}

// pgState is redisState on the test PostgreSQL, with tables of its own.
func pgState(t *testing.T, id string) (string, state.Leases) {
	const dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		conntest.Unavailable(t, "PostgreSQL on 127.0.0.1:5432", err)
	}
	table := "pipe_test_" + strings.ToLower(id)
	t.Cleanup(func() {
		conn.Exec(context.Background(), "DROP TABLE IF EXISTS "+table+", "+table+"_meta, "+table+"_keys, "+table+"_leases")
		conn.Close(context.Background())
	})
	leases, err := (&pgstate.Backend{DSN: dsn, Table: table}).OpenLeases()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { leases.Close() })
	return fmt.Sprintf("postgres: {dsn: %q, table: %s}", dsn, table), leases
}

func TestTwoReplicasSplitAPartitionedStreamAndOneTakesAllWhenTheOtherStops(t *testing.T) {
	t.Run("redis", func(t *testing.T) { twoReplicas(t, redisState) })
	t.Run("postgres", func(t *testing.T) { twoReplicas(t, pgState) })
}

func twoReplicas(t *testing.T, store func(*testing.T, string) (string, state.Leases)) {
	js := server(t)
	in := unique(t)
	newStream(t, js, in)
	block, leases := store(t, fmt.Sprintf("part_%d", time.Now().UnixNano()))
	// owners maps each replica to how many partitions it holds.
	owners := func() map[string]int {
		h, err := leases.Holders(t.Context(), "nats:"+in+"/win")
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int{}
		for name, owner := range h {
			if strings.HasPrefix(name, "part/") {
				out[owner]++
			}
		}
		return out
	}
	yaml := fmt.Sprintf(`
name: replicas
state:
  %s
source:
  nats_jetstream: {stream: %s, durable: win, create: true, rewind: true, partitions: 4,
    partition_subject: "%s.{partition}.>", lease_ttl: 1s, fetch_wait: 100ms}
sink:
  drop: {}
`, block, in, in)
	a, b := &got{parts: map[string]int{}, epochs: map[string]string{}}, &got{parts: map[string]int{}, epochs: map[string]string{}}
	pa, pb := compile(t, yaml, map[string]pipeline.Sink{"sink": a}), compile(t, yaml, map[string]pipeline.Sink{"sink": b})
	stopA, stopB := start(t, pa), start(t, pb)
	waitFor(t, "two replicas with two partitions each", func() bool {
		o := owners()
		return len(o) == 2 && slices.Equal(slices.Collect(maps.Values(o)), []int{2, 2})
	})
	// Each replica shows what it holds (the leases moved before this
	// check could see them; the figure follows at the replica's round).
	waitFor(t, "partitions_held 2 on both", func() bool {
		return figure(pa.Stats(), "partitions_held") == 2 && figure(pb.Stats(), "partitions_held") == 2
	})
	publishAll := func() {
		for p := range 4 {
			publish(t, js, fmt.Sprintf("%s.%d.ev", in, p), bodies(fmt.Sprint("p", p), 25))
		}
	}
	// Given both replicas hold two partitions, every message goes to the
	// one replica that holds its partition.
	publishAll()
	waitFor(t, "100 messages", func() bool { return a.count()+b.count() >= 100 })
	na, partsA, bad := a.take()
	nb, partsB, badB := b.take()
	if bad = append(bad, badB...); len(bad) > 0 {
		t.Fatal(bad)
	}
	if na+nb != 100 || len(partsA) != 2 || len(partsB) != 2 {
		t.Fatalf("a got %d messages of partitions %v, b %d of %v; want 100 split 2 and 2", na, partsA, nb, partsB)
	}
	for p, n := range partsA {
		if partsB[p] != 0 || n != 25 {
			t.Fatalf("partition %s: a got %d, b %d; want all 25 to one replica", p, n, partsB[p])
		}
	}
	b.mu.Lock()
	before := maps.Clone(b.epochs)
	b.mu.Unlock()
	// When a stops, b takes every partition at once (a released them) and
	// gets everything published next.
	if err := stopA(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b to hold all four partitions", func() bool {
		o := owners()
		return len(o) == 1 && slices.Equal(slices.Collect(maps.Values(o)), []int{4})
	})
	publishAll()
	waitFor(t, "100 more messages at b", func() bool { return b.count() >= 100 })
	if n, parts, bad := b.take(); n != 100 || len(parts) != 4 || len(bad) > 0 {
		t.Fatalf("b got %d messages of partitions %v (%v), want 100 of all 4", n, parts, bad)
	}
	// b's own partitions kept their read; a's started a new one each.
	b.mu.Lock()
	after := maps.Clone(b.epochs)
	b.mu.Unlock()
	distinct := map[string]bool{}
	for p, e := range after {
		distinct[e] = true
		if old, had := before[p]; had != (old == e) {
			t.Errorf("partition %s: read epoch %q, before a stopped %q (b had it: %v)", p, e, old, had)
		}
	}
	if len(distinct) != 4 {
		t.Errorf("read epochs %v, want one per partition", after)
	}
	for p := range 4 {
		settled(t, js, in, fmt.Sprintf("win-%d", p))
	}
	if err := stopB(); err != nil {
		t.Fatal(err)
	}
	if a.count() != 0 {
		t.Fatalf("a got %d messages after it stopped", a.count())
	}
	if n := figure(pb.Stats(), "partitions_acquired"); n < 4 {
		t.Errorf("b's partitions_acquired = %v, want at least 4", n)
	}
}

func TestPartitionsConfigErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{`nats_jetstream: {stream: s, durable: d, partitions: 4, partition_subject: "s.{partition}.>"}`, "add a top-level state: block"},
		{`nats_jetstream: {stream: s, durable: d, partitions: 4, partition_subject: "s.>"}`, "{partition} placeholder"},
		{`nats_jetstream: {stream: s, durable: d, partition_subject: "s.{partition}"}`, "partition_subject needs partitions"},
	} {
		c, err := dsl.Parse("p.yaml", []byte("name: p\nsource:\n  "+tc.src+"\nsink:\n  drop: {}\n"), nil)
		if err == nil {
			_, err = dsl.Compile(c, nil)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.src, err, tc.want)
		}
	}
}
