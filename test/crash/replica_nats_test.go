package crash

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pipe-dsl/pipe/internal/servicetest"
	"github.com/pipe-dsl/pipe/state/redisstate"
)

// TestGivenTwoReplicasOnAPartitionedStreamWhenOneIsKilledThenTheOtherTakesItsPartitionsAndNothingIsLost
// runs two `pipe run` processes on one JetStream stream of 4 partitions,
// SIGKILLs one mid-stream, and checks that while both lived each
// partition went to one process only, that the survivor took the dead
// one's partitions once its leases could expire (2/3 of the TTL at the
// earliest: it renews every third), and that every message was
// written and acked.
func TestGivenTwoReplicasOnAPartitionedStreamWhenOneIsKilledThenTheOtherTakesItsPartitionsAndNothingIsLost(t *testing.T) {
	const parts, ttl = 4, 2 * time.Second
	n := size()
	id := strconv.FormatInt(time.Now().UnixNano(), 36)
	stream := "REP_" + id
	js := jetStream(t, stream)
	prefix := redisPrefix(t, "rep:"+id+":")
	out := "rep_out_" + id
	conn, err := pgx.Connect(t.Context(), pgDSN)
	if err != nil {
		servicetest.Unavailable(t, "PostgreSQL on 127.0.0.1:5432", err)
	}
	t.Cleanup(func() {
		conn.Exec(context.Background(), "DROP TABLE IF EXISTS "+out)
		conn.Close(context.Background())
	})
	if _, err := conn.Exec(t.Context(), "CREATE TABLE "+out+" (seq bigint, part int, who text, at timestamptz DEFAULT clock_timestamp(), PRIMARY KEY (seq, who))"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := map[string]string{}
	for _, who := range []string{"a", "b"} {
		files[who] = filepath.Join(dir, who+".yaml")
		yaml := fmt.Sprintf(`name: rep_%s
state:
  redis: {url: "redis://127.0.0.1:6379/0", prefix: %q}
source:
  nats_jetstream: {stream: %s, durable: rep, create: true, rewind: true, ack_wait: 30s,
    partitions: %d, partition_subject: "%s.{partition}.>", lease_ttl: %s}
sink:
  postgres:
    dsn: %q
    table: %s
    columns: {seq: int(meta.nats_stream_seq), part: int(meta.nats_partition), who: '"%s"'}
    on_conflict: [seq, who]
`, id, prefix, stream, parts, stream, ttl, pgDSN, out, who)
		if err := os.WriteFile(files[who], []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	holdings := holdings(t, prefix, "nats:"+stream+"/rep")
	count := func(q string, args ...any) int {
		var c int
		if err := conn.QueryRow(t.Context(), q, args...).Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := run(t, files["a"]), run(t, files["b"])
	poll(t, "two replicas holding two partitions each", func() bool {
		h := holdings()
		return len(h) == 2 && h[0] == 2 && h[1] == 2
	})
	// First quarter: both alive and settled, each partition to one process.
	// Message i goes to partition i%4 and, published in order, gets
	// stream sequence i+1.
	pub := func(lo, hi int) error {
		for i := lo; i < hi; i++ {
			if _, err := js.js.PublishAsync(fmt.Sprintf("%s.%d.ev", stream, i%parts), fmt.Appendf(nil, `{"i":%d}`, i)); err != nil {
				return err
			}
		}
		select {
		case <-js.js.PublishAsyncComplete():
			return nil
		case <-time.After(30 * time.Second):
			return fmt.Errorf("publish acks missing")
		}
	}
	if err := pub(0, n/4); err != nil {
		t.Fatal(err)
	}
	poll(t, "the first quarter written", func() bool { return count("SELECT count(DISTINCT seq) FROM "+out) == n/4 })
	if shared := count("SELECT count(*) FROM (SELECT part FROM " + out + " GROUP BY part HAVING count(DISTINCT who) > 1) x"); shared != 0 {
		t.Fatalf("%d partitions went to both processes while both lived", shared)
	}
	if c := count("SELECT count(DISTINCT who) FROM " + out); c != 2 {
		t.Fatalf("%d processes wrote the first quarter, want 2", c)
	}
	// Second quarter: kill a as soon as it wrote some of it.
	published := make(chan error, 1)
	go func() { published <- pub(n/4, n/2) }()
	poll(t, "a to write some of the second quarter", func() bool {
		return count("SELECT count(*) FROM "+out+" WHERE who = 'a' AND seq > $1", n/4) > 0
	})
	killed := time.Now()
	if err := a.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = a.Wait()
	var aParts []int
	rs, err := conn.Query(t.Context(), "SELECT DISTINCT part FROM "+out+" WHERE who = 'a' ORDER BY part")
	if err != nil {
		t.Fatal(err)
	}
	for rs.Next() {
		var p int
		_ = rs.Scan(&p)
		aParts = append(aParts, p)
	}
	rs.Close()
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	if err := pub(n/2, n); err != nil {
		t.Fatal(err)
	}
	poll(t, "every message written", func() bool { return count("SELECT count(DISTINCT seq) FROM "+out) == n })
	poll(t, "every partition's consumer settled", func() bool {
		for p := range parts {
			c, err := js.js.Consumer(t.Context(), stream, fmt.Sprintf("rep-%d", p))
			if err != nil {
				return false
			}
			info, err := c.Info(t.Context())
			if err != nil || info.NumPending != 0 || info.NumAckPending != 0 {
				return false
			}
		}
		return true
	})
	// b took a's partitions, and not before a's leases could expire.
	var first time.Time
	if err := conn.QueryRow(t.Context(), "SELECT min(at) FROM "+out+" WHERE who = 'b' AND part = ANY($1)", aParts).Scan(&first); err != nil {
		t.Fatalf("b never wrote a's partitions %v: %v", aParts, err)
	}
	t.Logf("a held partitions %v; b wrote the first of them %v after the kill (lease_ttl %v); %d messages written twice (a's unacked, replayed by b)",
		aParts, first.Sub(killed).Round(time.Millisecond), ttl, count("SELECT count(*) FROM "+out)-n)
	if len(aParts) != 2 {
		t.Errorf("a wrote partitions %v, want two", aParts)
	}
	if bad := count("SELECT count(*) FROM "+out+" WHERE part <> (seq - 1) % $1 OR seq < 1 OR seq > $2", parts, n); bad != 0 {
		t.Errorf("%d rows carry a wrong nats_partition or an unpublished sequence", bad)
	}
	if took := first.Sub(killed); took < ttl/2 {
		t.Errorf("b wrote a's partition %v after the kill, before a's leases (ttl %v) could have expired", took, ttl)
	}
	stop(t, b, "b")
}

// holdings returns a function listing how many partitions each live
// replica of group holds (leases in Redis under prefix), in any order.
func holdings(t *testing.T, prefix, group string) func() []int {
	leases, err := (&redisstate.Backend{URL: "redis://127.0.0.1:6379/0", Prefix: prefix}).OpenLeases()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { leases.Close() })
	return func() []int {
		h, err := leases.Holders(t.Context(), group)
		if err != nil {
			t.Fatal(err)
		}
		by := map[string]int{}
		for name, owner := range h {
			if strings.HasPrefix(name, "part/") {
				by[owner]++
			}
		}
		var out []int
		for _, c := range by {
			out = append(out, c)
		}
		return out
	}
}
