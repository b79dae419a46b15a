// Package crash SIGKILLs `pipe run` processes that window a JetStream
// stream or a Kafka topic (kfake) with durable state into PostgreSQL
// upserts, one process or two replicas in one consumer group, and checks
// that the final table equals the windows computed directly from the
// input: no window missing, none counted twice. The default size runs in the normal
// test suite (3,000 messages); `make crash` runs 100,000 with -tags crash
// (CRASH_N overrides either).
package crash

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	goredis "github.com/redis/go-redis/v9"

	"github.com/pipe-dsl/pipe/internal/servicetest"
)

const pgDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// keys is how many keys the input spreads over.
const keys = 7

// pipeBin is the pipe binary, built once.
var pipeBin string

func TestMain(m *testing.M) { servicetest.RunWithPipe(m, &pipeBin) }

// defaultN is the number of input messages: small in the normal test
// suite, large with -tags crash (crash_large_test.go).
var defaultN = 3000

// size is the number of input messages: CRASH_N, or defaultN.
func size() int {
	if n, err := strconv.Atoi(os.Getenv("CRASH_N")); err == nil && n > 0 {
		return n
	}
	return defaultN
}

func TestGivenJetStreamIntoADurableWindowOnRedisWhenPipeIsKilledThreeTimesThenTheTableEqualsTheExpectedOne(t *testing.T) {
	crash(t, func(id string) string {
		prefix := redisPrefix(t, "crash:"+id+":")
		return fmt.Sprintf(`redis: {url: "redis://127.0.0.1:6379/0", prefix: %q}`, prefix)
	})
}

func TestGivenJetStreamIntoADurableWindowOnPostgresWhenPipeIsKilledThreeTimesThenTheTableEqualsTheExpectedOne(t *testing.T) {
	crash(t, func(id string) string {
		table := "crash_state_" + id
		t.Cleanup(func() {
			conn, err := pgx.Connect(context.Background(), pgDSN)
			if err != nil {
				return
			}
			defer conn.Close(context.Background())
			for _, s := range []string{"", "_meta", "_keys"} {
				conn.Exec(context.Background(), "DROP TABLE IF EXISTS "+table+s)
			}
		})
		return fmt.Sprintf(`postgres: {dsn: %q, table: %s}`, pgDSN, table)
	})
}

// crash publishes the input in four parts; after each of the first three
// it starts pipe, waits until pipe has received exactly that part (it
// cannot read further: nothing more is published), and SIGKILLs it, with
// some of what it read committed and some not (both are logged). The
// fourth run gets the rest and a closing message whose event time closes
// every window, and is stopped with SIGTERM once the table is complete.
func crash(t *testing.T, stateBlock func(id string) string) {
	n := size()
	id := strconv.FormatInt(time.Now().UnixNano(), 36)
	js := jetStream(t, "CRASH_"+id)
	db := table(t, "crash_out_"+id)
	file := filepath.Join(t.TempDir(), "pipe.yaml")
	yaml := fmt.Sprintf(`name: crash_%s
state:
  %s
  checkpoint_interval: 200ms
source:
  nats_jetstream: {stream: CRASH_%s, durable: win, create: true, rewind: true, ack_wait: 30s, max_ack_pending: 100000}
`, id, stateBlock(id), id) + windowToTable(id)
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	subject := "CRASH_" + id + ".ev"
	for part := range 3 {
		lo, hi := part*n/4, (part+1)*n/4
		publish(t, js.js, subject, lo, hi)
		cmd := run(t, file)
		// Kills 1 and 3 land before the run's first checkpoint (it reads
		// a part in well under checkpoint_interval), kill 2 after a
		// checkpoint committed some of its part: the crash on each side of
		// the commit point.
		floor := uint64(0)
		if part == 1 {
			floor = uint64(lo + 1)
		}
		info := js.waitDelivered(t, uint64(hi), floor)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		t.Logf("kill %d: pipe had read through stream sequence %d; acked (committed) through %d (0: nothing yet in this run)", part+1, hi, info.AckFloor.Stream)
	}
	publish(t, js.js, subject, 3*n/4, n)
	closing := fmt.Sprintf(`{"k":"end","ts":%d,"v":0}`, int64(n)*100+5000)
	if _, err := js.js.Publish(t.Context(), subject, []byte(closing)); err != nil {
		t.Fatal(err)
	}
	lastRun(t, file, db, n, "every message acked", func() bool { return js.settled(t) })
}

// lastRun runs pipe on file until the table has every window of n messages
// and settled holds, stops it with SIGTERM (exit status 0), and compares
// the table with the windows computed directly.
func lastRun(t *testing.T, file string, db *outTable, n int, what string, settled func() bool) {
	t.Helper()
	want := expected(n)
	cmd := run(t, file)
	poll(t, "the table to be complete and "+what, func() bool {
		return db.count(t) == len(want) && settled()
	})
	stop(t, cmd, "the last run")
	db.check(t, want)
}

// redisPrefix skips the test when Redis is down (fails under
// PIPE_REQUIRE_SERVICES=1) and deletes every key under prefix after it.
func redisPrefix(t *testing.T, prefix string) string {
	t.Helper()
	rdb := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"})
	t.Cleanup(func() { rdb.Close() })
	if err := rdb.Ping(t.Context()).Err(); err != nil {
		servicetest.Unavailable(t, "Redis on 127.0.0.1:6379", err)
	}
	t.Cleanup(func() { // t.Context() is done by now
		if ks, _ := rdb.Keys(context.Background(), prefix+"*").Result(); len(ks) > 0 {
			rdb.Del(context.Background(), ks...)
		}
	})
	return prefix
}

// stop ends cmd with SIGTERM and waits: a drain must exit 0.
func stop(t *testing.T, cmd *exec.Cmd, who string) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("%s, stopped with SIGTERM: %v", who, err)
	}
}

// run starts pipe on file.
func run(t *testing.T, file string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(pipeBin, "run", "--quiet", "--log-level", "warn", file)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd
}

// agg is one row: count and sum of one key's window.
type agg struct{ n, s int64 }

// expected computes the rows of messages 0..n-1 directly: message i has
// key k(i%keys), event time i*100ms and value i.
func expected(n int) map[string]agg {
	rows := map[string]agg{}
	for i := range n {
		start := time.UnixMilli(int64(i) * 100 / 1000 * 1000).UTC().Format(time.RFC3339Nano)
		k := fmt.Sprintf("k%d %s", i%keys, start)
		a := rows[k]
		a.n++
		a.s += int64(i)
		rows[k] = a
	}
	return rows
}

// poll waits for until, up to a minute plus 2ms per input message.
func poll(t *testing.T, what string, until func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute + time.Duration(size())*2*time.Millisecond)
	for !until() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// jetStreamT is the input stream.
type jetStreamT struct {
	js     jetstream.JetStream
	stream string
}

func jetStream(t *testing.T, name string) *jetStreamT {
	nc, err := natsgo.Connect("nats://127.0.0.1:4222")
	if err != nil {
		servicetest.Unavailable(t, "NATS JetStream on 127.0.0.1:4222", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"}, Storage: jetstream.FileStorage}); err != nil {
		servicetest.Unavailable(t, "NATS JetStream on 127.0.0.1:4222", err)
	}
	t.Cleanup(func() { _ = js.DeleteStream(context.Background(), name) })
	return &jetStreamT{js: js, stream: name}
}

// publish stores messages lo..hi-1.
func publish(t *testing.T, js jetstream.JetStream, subject string, lo, hi int) {
	t.Helper()
	var fs []jetstream.PubAckFuture
	for i := lo; i < hi; i++ {
		f, err := js.PublishAsync(subject, fmt.Appendf(nil, `{"k":"k%d","ts":%d,"v":%d}`, i%keys, int64(i)*100, i))
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, f)
	}
	for _, f := range fs {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			t.Fatal(err)
		case <-time.After(10 * time.Second):
			t.Fatal("no publish ack")
		}
	}
}

// waitDelivered waits until the consumer has delivered through stream
// sequence seq, and acked through floor, and returns its info then.
func (s *jetStreamT) waitDelivered(t *testing.T, seq, floor uint64) *jetstream.ConsumerInfo {
	t.Helper()
	var info *jetstream.ConsumerInfo
	poll(t, fmt.Sprintf("pipe to read through %d", seq), func() bool {
		c, err := s.js.Consumer(t.Context(), s.stream, "win")
		if err != nil {
			return false
		}
		if info, err = c.Info(t.Context()); err != nil {
			return false
		}
		return info.Delivered.Stream >= seq && info.AckFloor.Stream >= floor
	})
	return info
}

// settled reports whether every message was acked.
func (s *jetStreamT) settled(t *testing.T) bool {
	c, err := s.js.Consumer(t.Context(), s.stream, "win")
	if err != nil {
		return false
	}
	info, err := c.Info(t.Context())
	return err == nil && info.NumPending == 0 && info.NumAckPending == 0
}

// outTable is the PostgreSQL table the pipe writes.
type outTable struct {
	conn *pgx.Conn
	name string
}

func table(t *testing.T, name string) *outTable {
	conn, err := pgx.Connect(t.Context(), pgDSN)
	if err != nil {
		servicetest.Unavailable(t, "PostgreSQL on 127.0.0.1:5432", err)
	}
	t.Cleanup(func() {
		conn.Exec(context.Background(), "DROP TABLE IF EXISTS "+name)
		conn.Close(context.Background())
	})
	if _, err := conn.Exec(t.Context(), "CREATE TABLE "+name+
		" (key text, window_start text, n bigint, s bigint, PRIMARY KEY (key, window_start))"); err != nil {
		t.Fatal(err)
	}
	return &outTable{conn: conn, name: name}
}

func (o *outTable) count(t *testing.T) int {
	var c int
	if err := o.conn.QueryRow(t.Context(), "SELECT count(*) FROM "+o.name).Scan(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

// check compares the table with want, row by row (the first 10
// differences).
func (o *outTable) check(t *testing.T, want map[string]agg) {
	t.Helper()
	got := o.rows(t)
	if len(got) != len(want) {
		t.Errorf("table has %d rows, want %d", len(got), len(want))
	}
	bad := 0
	for k, w := range want {
		if got[k] != w && bad < 10 {
			bad++
			t.Errorf("row %s = %v, want %v", k, got[k], w)
		}
	}
}

func (o *outTable) rows(t *testing.T) map[string]agg {
	rs, err := o.conn.Query(t.Context(), "SELECT key, window_start, n, s FROM "+o.name)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	got := map[string]agg{}
	for rs.Next() {
		var k, start string
		var a agg
		if err := rs.Scan(&k, &start, &a.n, &a.s); err != nil {
			t.Fatal(err)
		}
		got[k+" "+start] = a
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

// windowToTable is the stages and sink every crash pipeline shares: a keyed
// 1 s event-time window upserted into crash_out_<id> by (key, window_start),
// the idempotent write exactly-once results need.
func windowToTable(id string) string {
	return fmt.Sprintf(`stages:
  - window:
      type: tumbling
      size: 1s
      key: msg.k
      event_time: msg.ts
      aggregate: {n: count(), s: sum(msg.v)}
sink:
  postgres:
    dsn: %q
    table: crash_out_%s
    columns: {key: msg.key, window_start: msg.window_start, n: msg.n, s: msg.s}
    on_conflict: [key, window_start]
    update: [n, s]
`, pgDSN, id)
}
