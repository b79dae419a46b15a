package nats_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/pipe-dsl/pipe/connectors/internal/conntest"
	"github.com/pipe-dsl/pipe/connectors/internal/dsltest"
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
	conntest.Unavailable(t, "NATS JetStream on "+natsAddr, err)
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

// The harness shared with the other connector tests.
type recorder = conntest.Recorder

var (
	bodies      = conntest.Bodies
	compile     = dsltest.Compile
	start       = conntest.Start
	newRecorder = conntest.NewRecorder
	collect     = conntest.Collect
	envelope    = conntest.Envelope
)

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
