package mqtt

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"go.uber.org/goleak"

	"github.com/pipe-dsl/pipe/connectors/internal/conntest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const brokerAddr = "127.0.0.1:1883"

// needBroker skips the test when Mosquitto is unreachable (fails instead
// with PIPE_REQUIRE_SERVICES=1).
func needBroker(t testing.TB) {
	t.Helper()
	c, err := net.DialTimeout("tcp", brokerAddr, 2*time.Second)
	if err != nil {
		conntest.Unavailable(t, "Mosquitto on 127.0.0.1:1883", err)
	}
	c.Close()
}

func unique(prefix string) string {
	var r [4]byte
	_, _ = rand.Read(r[:])
	return fmt.Sprintf("pipe-test-%s-%s", prefix, hex.EncodeToString(r[:]))
}

// client is a plain MQTT 5 client for producing and observing.
type client struct {
	*paho.Client
	got  chan *paho.Publish
	once sync.Once
}

// connect opens a client; with expiry > 0 its session outlives it.
func connect(t testing.TB, id string, clean bool, expiry uint32) *client {
	t.Helper()
	conn, err := net.Dial("tcp", brokerAddr)
	if err != nil {
		t.Fatal(err)
	}
	c := &client{got: make(chan *paho.Publish, 4096)}
	c.Client = paho.NewClient(paho.ClientConfig{
		ClientID: id,
		Conn:     packets.NewThreadSafeConn(conn),
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			c.got <- pr.Packet
			return true, nil
		}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cp := &paho.Connect{ClientID: id, CleanStart: clean, KeepAlive: 30}
	if expiry > 0 {
		cp.Properties = &paho.ConnectProperties{SessionExpiryInterval: &expiry}
	}
	if _, err := c.Connect(ctx, cp); err != nil {
		t.Fatalf("connect %s: %v", id, err)
	}
	t.Cleanup(func() { c.close() })
	return c
}

func (c *client) close() {
	c.once.Do(func() {
		_ = c.Disconnect(&paho.Disconnect{ReasonCode: 0})
		<-c.Done()
	})
}

func (c *client) subscribe(t testing.TB, topic string) {
	t.Helper()
	if _, err := c.Subscribe(context.Background(), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: topic, QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
}

func (c *client) publish(t testing.TB, topic string, bodies []string, props map[string]string) {
	t.Helper()
	for _, b := range bodies {
		p := &paho.Publish{QoS: 1, Topic: topic, Payload: []byte(b), Properties: &paho.PublishProperties{}}
		for k, v := range props {
			p.Properties.User.Add(k, v)
		}
		if _, err := c.Publish(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
}

// receive returns the next n messages, failing after a minute.
func (c *client) receive(t testing.TB, n int) []*paho.Publish {
	t.Helper()
	timeout := time.NewTimer(time.Minute)
	defer timeout.Stop()
	var out []*paho.Publish
	for len(out) < n {
		select {
		case p := <-c.got:
			out = append(out, p)
		case <-timeout.C:
			t.Fatalf("received %d of %d messages", len(out), n)
		}
	}
	return out
}

// session creates a persistent session subscribed to topic, so messages
// published while nobody is connected wait for the source.
func session(t testing.TB, id, topic string) {
	t.Helper()
	c := connect(t, id, true, 600)
	c.subscribe(t, topic)
	c.close()
}

// assertSessionEmpty resumes the session id and checks that the first
// message it gets is a fresh marker: nothing unacked was left behind.
func assertSessionEmpty(t testing.TB, id, topic string) {
	t.Helper()
	c := connect(t, id, false, 600)
	c.expectMarker(t, topic)
	// Clean up the broker-side session.
	c.close()
	connect(t, id, true, 0).close()
}

// assertSessionHoldsOnlyDuplicates is assertSessionEmpty after a cut
// connection: acks lost with the connection make the broker deliver those
// messages again, and a redelivery may arrive after the pipeline stopped
// reading. The session may hold such duplicates of delivered messages,
// nothing else.
func assertSessionHoldsOnlyDuplicates(t testing.TB, id, topic string, delivered []string) {
	t.Helper()
	c := connect(t, id, false, 600)
	pub := connect(t, unique("marker"), true, 0)
	pub.publish(t, topic, []string{"marker"}, nil)
	for {
		p := c.receive(t, 1)[0]
		if string(p.Payload) == "marker" {
			break
		}
		if !slices.Contains(delivered, string(p.Payload)) {
			t.Fatalf("resumed session got %q, which was never delivered", p.Payload)
		}
	}
	c.close()
	connect(t, id, true, 0).close()
}

// expectMarker publishes a marker to topic and checks that it is the next
// message c receives: the session had nothing else queued or unacked.
func (c *client) expectMarker(t testing.TB, topic string) {
	t.Helper()
	pub := connect(t, unique("marker"), true, 0)
	pub.publish(t, topic, []string{"marker"}, nil)
	if p := c.receive(t, 1)[0]; string(p.Payload) != "marker" {
		t.Fatalf("resumed session got %q (an unacked message), want the marker", p.Payload)
	}
}

func bodies(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(`{"%s":%d}`, prefix, i)
	}
	return out
}
