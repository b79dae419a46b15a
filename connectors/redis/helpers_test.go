package redis_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/pipe-dsl/pipe/dsl"
	"github.com/pipe-dsl/pipe/pipeline"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// redisAddr is the server the tests use.
const redisAddr = "127.0.0.1:6379"

// server returns a client of the test server; the test skips when it is
// unreachable, or fails with PIPE_REQUIRE_SERVICES=1.
func server(t testing.TB) *goredis.Client {
	t.Helper()
	rdb := goredis.NewClient(&goredis.Options{Addr: redisAddr})
	t.Cleanup(func() { rdb.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		if os.Getenv("PIPE_REQUIRE_SERVICES") == "1" {
			t.Fatalf("Redis on %s is required (PIPE_REQUIRE_SERVICES=1): %v", redisAddr, err)
		}
		t.Skipf("Redis not reachable on %s: %v (PIPE_REQUIRE_SERVICES=1 makes this a failure)", redisAddr, err)
	}
	return rdb
}

// unique returns a key unique to this test run, deleted after the test.
func unique(t testing.TB, rdb *goredis.Client, suffix string) string {
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	key := fmt.Sprintf("pipe-test:%s:%d:%s", name, time.Now().UnixNano(), suffix)
	t.Cleanup(func() { rdb.Del(context.Background(), key) })
	return key
}

// add appends bodies to stream as field body, with extra fields.
func add(t testing.TB, rdb *goredis.Client, stream string, bodies []string, extra ...string) {
	t.Helper()
	_, err := rdb.Pipelined(t.Context(), func(p goredis.Pipeliner) error {
		for _, b := range bodies {
			p.XAdd(t.Context(), &goredis.XAddArgs{Stream: stream, Values: append([]string{"body", b}, extra...)})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func bodies(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(`{"%s":%d}`, prefix, i)
	}
	return out
}

// compile builds a pipeline from YAML, replacing the sinks named in sinks
// (the dead-letter sink by "dead_letter").
func compile(t testing.TB, src string, sinks map[string]pipeline.Sink) *dsl.Compiled {
	t.Helper()
	c, err := dsl.Parse(t.Name()+".yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := dsl.Compile(c, &dsl.CompileOptions{Replace: func(n *dsl.Node) (any, bool) {
		s, ok := sinks[n.Name]
		return s, ok && n.Role == pipeline.RoleSink
	}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// start runs p until the returned stop is called; stop returns Run's error.
func start(t testing.TB, p *dsl.Compiled) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("pipeline did not stop")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// recorder is a sink that passes every written message to C, after Fail
// (if set) had its say.
type recorder struct {
	C    chan *pipeline.Message
	Fail func(m *pipeline.Message) error
	// Hold, if set, makes every write wait for a value on it, or fail
	// when ctx ends; Entered, if set, gets a value as each write starts.
	Hold, Entered chan struct{}
}

func newRecorder() *recorder { return &recorder{C: make(chan *pipeline.Message, 100000)} }

func (r *recorder) Write(ctx context.Context, m *pipeline.Message) error {
	if r.Entered != nil {
		select {
		case r.Entered <- struct{}{}:
		default:
		}
	}
	if r.Hold != nil {
		select {
		case <-r.Hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if r.Fail != nil {
		if err := r.Fail(m); err != nil {
			return err
		}
	}
	if b := m.Batch(); b != nil {
		for _, x := range b {
			r.C <- x
		}
		return nil
	}
	r.C <- m
	return nil
}

// collect receives n messages from c, failing the test after timeout.
func collect(t testing.TB, c <-chan *pipeline.Message, n int, timeout time.Duration) []*pipeline.Message {
	t.Helper()
	out := make([]*pipeline.Message, 0, n)
	deadline := time.After(timeout)
	for len(out) < n {
		select {
		case m := <-c:
			out = append(out, m)
		case <-deadline:
			t.Fatalf("received %d of %d messages in %v", len(out), n, timeout)
		}
	}
	return out
}

// settled waits until group has read every entry and has none pending.
func settled(t testing.TB, rdb *goredis.Client, stream, group string) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for {
		groups, err := rdb.XInfoGroups(t.Context(), stream).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range groups {
			if g.Name == group && g.Pending == 0 && g.Lag == 0 {
				return
			}
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("group %s has not read and acked every entry: %+v", group, groups)
		}
	}
}

func envelope(t testing.TB, m *pipeline.Message) pipeline.DeadLetter {
	t.Helper()
	var d pipeline.DeadLetter
	if err := json.Unmarshal(m.Body, &d); err != nil {
		t.Fatalf("dead letter %q: %v", m.Body, err)
	}
	return d
}
