package crash

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	goredis "github.com/redis/go-redis/v9"
)

// TestGivenADurableWindowOnRedisWhenRedisIsKilledAndRestartedMidRunThenTheTableEqualsTheExpectedOne
// runs one `pipe run` (JetStream into a keyed window with state in a
// private redis-server, upserted into PostgreSQL) and SIGKILLs that Redis
// mid-run, after a checkpoint committed, while more input arrives. Redis
// runs with an append-only file fsynced on every write, as a store that
// must not lose a committed checkpoint should; it is restarted on the same
// port from the same directory. The same pipe process must wait out the
// outage (no ack, the breaker open in /metrics), then carry on: the table
// equals the windows computed from the input, nothing lost, nothing
// counted twice.
func TestGivenADurableWindowOnRedisWhenRedisIsKilledAndRestartedMidRunThenTheTableEqualsTheExpectedOne(t *testing.T) {
	restartMidRun(t, startRedis(t, true))
}

// TestGivenADurableWindowOnPostgresWhenPostgresIsKilledAndRestartedMidRunThenTheTableEqualsTheExpectedOne
// is the same with the state in a private PostgreSQL (initdb into a
// temporary directory, run as the postgres user when the test runs as
// root): the postmaster and its children are SIGKILLed, and the restart
// recovers from the WAL.
func TestGivenADurableWindowOnPostgresWhenPostgresIsKilledAndRestartedMidRunThenTheTableEqualsTheExpectedOne(t *testing.T) {
	restartMidRun(t, startPostgres(t))
}

// restartMidRun kills store under a running pipe (startOutage), restarts
// it, and checks that the same pipe commits, takes the rest, and writes
// the expected table.
func restartMidRun(t *testing.T, store privateStore) {
	n := size()
	o := startOutage(t, store)
	// and when the store is back with its data, the same pipe commits,
	// takes the rest, and the table equals the expected one.
	o.store.start(t)
	publish(t, o.js.js, o.subject, 3*n/4, n)
	closing := fmt.Sprintf(`{"k":"end","ts":%d,"v":0}`, int64(n)*100+5000)
	if _, err := o.js.js.Publish(t.Context(), o.subject, []byte(closing)); err != nil {
		t.Fatal(err)
	}
	want := expected(n)
	poll(t, "the table to be complete and every message acked", func() bool {
		select {
		case err := <-o.exited:
			t.Fatalf("pipe exited after the store came back: %v", err)
		default:
		}
		return o.db.count(t) == len(want) && o.js.settled(t)
	})
	if s := metric(t, o.http, "pipe_window_store_breaker_state"); s != 0 {
		t.Errorf("store_breaker_state = %v after the store came back, want 0 (closed)", s)
	}
	if err := o.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-o.exited; err != nil {
		t.Errorf("pipe, stopped with SIGTERM: %v", err)
	}
	o.exited <- nil // for the cleanup
	o.db.check(t, want)
}

// TestGivenADurableWindowOnRedisWhenRedisRestartsWithoutItsDataThenPipeStopsWithAnErrorAndAcksNothingMore
// is the same outage with a Redis that keeps nothing on disk: it comes
// back empty, the checkpoints committed before are gone, and nothing pipe
// could do would make the results exact. pipe must say so and stop (its
// commit is refused with state.ErrLost), nacking what it holds, rather
// than go on over the hole or hang.
func TestGivenADurableWindowOnRedisWhenRedisRestartsWithoutItsDataThenPipeStopsWithAnErrorAndAcksNothingMore(t *testing.T) {
	o := startOutage(t, startRedis(t, false))
	floor := o.js.info(t).AckFloor.Stream
	o.store.start(t)
	var err error
	poll(t, "pipe to exit", func() bool {
		select {
		case err = <-o.exited:
			return true
		default:
			return false
		}
	})
	o.exited <- err // for the cleanup
	if err == nil {
		t.Error("pipe exited with status 0 after the store lost its state, want an error")
	}
	if !strings.Contains(o.stderr.String(), "the store lost this scope") {
		t.Errorf("pipe's log does not name the lost state:\n%s", o.stderr.String())
	}
	if got := o.js.info(t).AckFloor.Stream; got != floor {
		t.Errorf("ack floor moved %d -> %d after the store lost its state, want it still", floor, got)
	}
}

// privateStore is a state store server of the test's own.
type privateStore interface {
	// block is the `state:` entry that reaches it.
	block() string
	start(t *testing.T)
	kill(t *testing.T)
}

// outage is one `pipe run` whose private store was killed mid-run.
type outage struct {
	store   privateStore
	js      *jetStreamT
	db      *outTable
	subject string
	http    string
	cmd     *exec.Cmd
	exited  chan error
	stderr  *syncBuffer
}

// startOutage runs pipe on a JetStream stream into a durable window with
// state in store, lets it read and commit the first half of size()
// messages, SIGKILLs the store, publishes the third quarter, and checks
// that while the store is down the breaker opens, nothing more is acked and
// pipe keeps running.
func startOutage(t *testing.T, store privateStore) *outage {
	t.Helper()
	n := size()
	id := strconv.FormatInt(time.Now().UnixNano(), 36)
	o := &outage{store: store, js: jetStream(t, "RESTART_"+id), db: table(t, "crash_out_"+id),
		subject: "RESTART_" + id + ".ev", http: freeAddr(t), exited: make(chan error, 1), stderr: &syncBuffer{}}
	file := filepath.Join(t.TempDir(), "pipe.yaml")
	yaml := fmt.Sprintf(`name: restart_%s
state:
  %s
  checkpoint_interval: 200ms
source:
  nats_jetstream: {stream: RESTART_%s, durable: win, create: true, rewind: true, ack_wait: 30s, max_ack_pending: 100000}
`, id, o.store.block(), id) + windowToTable(id)
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	// Given pipe has read the first half and committed a checkpoint of it,
	publish(t, o.js.js, o.subject, 0, n/2)
	o.cmd = exec.Command(pipeBin, "run", "--quiet", "--log-level", "warn", "--http", o.http, file)
	o.cmd.Stderr = io.MultiWriter(os.Stderr, o.stderr)
	if err := o.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { o.exited <- o.cmd.Wait() }()
	t.Cleanup(func() {
		_ = o.cmd.Process.Kill()
		<-o.exited
	})
	o.js.waitDelivered(t, uint64(n/2), uint64(n/2))
	// when the store is killed and more input arrives while it is down,
	o.store.kill(t)
	publish(t, o.js.js, o.subject, n/2, 3*n/4)
	poll(t, "the window's store breaker to open", func() bool {
		return metric(t, o.http, "pipe_window_store_breaker_opened_total") >= 1
	})
	floor := o.js.info(t).AckFloor.Stream
	failures := metric(t, o.http, "pipe_window_store_failures_total")
	poll(t, "three more failed store calls", func() bool {
		return metric(t, o.http, "pipe_window_store_failures_total") >= failures+3
	})
	// then nothing more is acked while it is down, and pipe keeps running.
	if info := o.js.info(t); info.AckFloor.Stream != floor || info.NumAckPending == 0 {
		t.Errorf("during the outage the ack floor moved %d -> %d (%d pending); want it still, with messages pending",
			floor, info.AckFloor.Stream, info.NumAckPending)
	}
	select {
	case err := <-o.exited:
		t.Fatalf("pipe exited during the store outage: %v", err)
	default:
	}
	t.Logf("store down: ack floor %d of %d published, %v failed store calls",
		floor, 3*n/4, metric(t, o.http, "pipe_window_store_failures_total"))
	return o
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// privateRedis is a redis-server of this test's own, on a free port, with
// its files in a temporary directory: never the shared one.
type privateRedis struct {
	addr, dir string
	persist   bool
	cmd       *exec.Cmd
	exited    chan struct{}
}

func (r *privateRedis) block() string {
	return fmt.Sprintf(`redis: {url: "redis://%s/0", prefix: "restart:"}`, r.addr)
}

func startRedis(t *testing.T, persist bool) *privateRedis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not installed")
	}
	r := &privateRedis{addr: freeAddr(t), dir: t.TempDir(), persist: persist}
	r.start(t)
	t.Cleanup(func() {
		if r.cmd != nil {
			r.kill(t)
		}
	})
	return r
}

// start runs redis-server on r.addr and waits until it answers. With
// persist, every write is in the append-only file, fsynced, before Redis
// replies; without, Redis keeps nothing on disk.
func (r *privateRedis) start(t *testing.T) {
	t.Helper()
	_, port, _ := net.SplitHostPort(r.addr)
	aof := "no"
	if r.persist {
		aof = "yes"
	}
	r.cmd = exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--dir", r.dir,
		"--appendonly", aof, "--appendfsync", "always", "--save", "", "--logfile", filepath.Join(r.dir, "redis.log"))
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) {
		_ = cmd.Wait()
		close(exited)
	}(r.cmd, r.exited)
	rdb := goredis.NewClient(&goredis.Options{Addr: r.addr, MaxRetries: -1})
	defer rdb.Close()
	poll(t, "the private redis-server to answer", func() bool {
		return rdb.Ping(context.Background()).Err() == nil
	})
}

// kill SIGKILLs redis-server and waits until it is gone.
func (r *privateRedis) kill(t *testing.T) {
	t.Helper()
	_ = r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.exited
	r.cmd = nil
}

// freeAddr returns a 127.0.0.1 address with a port free at the time.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// metric returns the sum of the samples of name on pipe's /metrics, or -1
// when it cannot be read.
func metric(t *testing.T, addr, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sum, found := 0.0, false
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err == nil {
			sum, found = sum+v, true
		}
	}
	if !found {
		return -1
	}
	return sum
}

// info returns the consumer's state.
func (s *jetStreamT) info(t *testing.T) *jetstream.ConsumerInfo {
	t.Helper()
	c, err := s.js.Consumer(t.Context(), s.stream, "win")
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info
}
