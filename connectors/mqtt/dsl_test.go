package mqtt_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"

	"github.com/pipe-dsl/pipe/connectors/internal/conntest"
	"github.com/pipe-dsl/pipe/dsl"
)

// A pipeline file moves messages from one topic to another through a map
// stage; every message arrives.
func TestPipelineFileRoundTrip(t *testing.T) {
	conn, err := net.DialTimeout("tcp", "127.0.0.1:1883", 2*time.Second)
	if err != nil {
		conntest.Unavailable(t, "Mosquitto on 127.0.0.1:1883", err)
	}
	suffix := fmt.Sprint(time.Now().UnixNano())
	in, out, id := "pipe-test/yaml-in-"+suffix, "pipe-test/yaml-out-"+suffix, "pipe-test-yaml-"+suffix

	conn.Close()
	got := make(chan string, 1000)
	ctx := context.Background()
	c := mustConnect(t, "pipe-test-yaml-obs-"+suffix, 0, got)
	defer func() { _ = c.Disconnect(&paho.Disconnect{}); <-c.Done() }()
	if _, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: out, QoS: 1}}}); err != nil {
		t.Fatal(err)
	}

	// The source's session exists before it starts (a resumed session), so
	// what is published now waits for it.
	sess := mustConnect(t, id, 60, nil)
	if _, err := sess.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: in, QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	_ = sess.Disconnect(&paho.Disconnect{})
	<-sess.Done()
	const n = 100
	for i := range n {
		if _, err := c.Publish(ctx, &paho.Publish{QoS: 1, Topic: in, Payload: fmt.Appendf(nil, `{"id":%d}`, i)}); err != nil {
			t.Fatal(err)
		}
	}
	src := fmt.Sprintf(`
name: mqtt-roundtrip
source:
  mqtt: {topic: "%s", client_id: "%s", session_expiry: 1m}
stages:
  - map: '{"id": msg.id, "seen": true}'
sink:
  mqtt: {topic: "%s"}
`, in, id, out)
	cfg, err := dsl.Parse("roundtrip.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := dsl.Compile(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()

	deadline := time.After(30 * time.Second)
	var bodies, want []string
	for len(bodies) < n {
		select {
		case b := <-got:
			bodies = append(bodies, b)
		case <-deadline:
			t.Fatalf("got %d of %d messages", len(bodies), n)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for i := range n {
		want = append(want, fmt.Sprintf(`{"id":%d,"seen":true}`, i))
	}
	slices.Sort(bodies)
	slices.Sort(want)
	if !slices.Equal(bodies, want) {
		t.Fatalf("got %q..., want %q...", bodies[:3], want[:3])
	}
}

// mustConnect opens a clean MQTT 5 session; received bodies go to got.
func mustConnect(t *testing.T, id string, expiry uint32, got chan<- string) *paho.Client {
	t.Helper()
	conn, err := net.Dial("tcp", "127.0.0.1:1883")
	if err != nil {
		t.Fatal(err)
	}
	c := paho.NewClient(paho.ClientConfig{
		ClientID: id,
		Conn:     packets.NewThreadSafeConn(conn),
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			if got != nil {
				got <- string(pr.Packet.Payload)
			}
			return true, nil
		}},
	})
	cp := &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 30}
	if expiry > 0 {
		cp.Properties = &paho.ConnectProperties{SessionExpiryInterval: &expiry}
	}
	if _, err := c.Connect(context.Background(), cp); err != nil {
		t.Fatal(err)
	}
	return c
}
