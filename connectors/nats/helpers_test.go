package nats_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/pipe-dsl/pipe/dsl"
	"github.com/pipe-dsl/pipe/pipeline"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// natsAddr is the JetStream server the tests use.
const natsAddr = "127.0.0.1:4222"

// server returns a JetStream client of the test server; the test skips when
// it is unreachable, or fails with PIPE_REQUIRE_SERVICES=1.
func server(t testing.TB) jetstream.JetStream {
	t.Helper()
	c, err := net.DialTimeout("tcp", natsAddr, time.Second)
	if err != nil {
		unavailable(t, err)
	}
	c.Close()
	nc, err := natsgo.Connect("nats://" + natsAddr)
	if err != nil {
		unavailable(t, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AccountInfo(t.Context()); err != nil {
		unavailable(t, fmt.Errorf("JetStream: %w", err))
	}
	return js
}

func unavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("PIPE_REQUIRE_SERVICES") == "1" {
		t.Fatalf("NATS JetStream on %s is required (PIPE_REQUIRE_SERVICES=1): %v", natsAddr, err)
	}
	t.Skipf("NATS JetStream not reachable on %s: %v (PIPE_REQUIRE_SERVICES=1 makes this a failure)", natsAddr, err)
}

// unique returns a stream name unique to this test run.
func unique(t testing.TB) string {
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	return fmt.Sprintf("%s_%d", name, time.Now().UnixNano())
}

// newStream creates a stream capturing name.> and deletes it after the test.
func newStream(t testing.TB, js jetstream.JetStream, name string) {
	t.Helper()
	_, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"}, Storage: jetstream.MemoryStorage})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = js.DeleteStream(context.Background(), name) })
}

// publish stores bodies on subject and waits for every ack.
func publish(t testing.TB, js jetstream.JetStream, subject string, bodies []string) {
	t.Helper()
	futures := make([]jetstream.PubAckFuture, len(bodies))
	for i, b := range bodies {
		f, err := js.PublishAsync(subject, []byte(b))
		if err != nil {
			t.Fatal(err)
		}
		futures[i] = f
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			t.Fatal(err)
		case <-time.After(10 * time.Second):
			t.Fatal("no publish ack")
		}
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
		name := n.Name
		if n == c.DeadLetter {
			name = "dead_letter"
		}
		s, ok := sinks[name]
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

// settled waits until the consumer has nothing pending or unacked.
func settled(t testing.TB, js jetstream.JetStream, stream, durable string) *jetstream.ConsumerInfo {
	t.Helper()
	c, err := js.Consumer(t.Context(), stream, durable)
	if err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for {
		info, err := c.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if info.NumAckPending == 0 && info.NumPending == 0 {
			return info
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("consumer %s not settled: %d pending, %d unacked", durable, info.NumPending, info.NumAckPending)
		}
	}
}
