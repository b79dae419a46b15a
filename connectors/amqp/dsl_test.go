package amqp_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/pipe-dsl/pipe/dsl"
)

// A pipeline file moves messages from one queue to another through a map
// stage; every message arrives, none is left behind.
func TestPipelineFileRoundTrip(t *testing.T) {
	conn := dialOrSkip(t)
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	suffix := fmt.Sprint(time.Now().UnixNano())
	in, out := "pipe-test-yaml-in-"+suffix, "pipe-test-yaml-out-"+suffix
	for _, q := range []string{in, out} {
		if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = ch.QueueDelete(q, false, false, false) })
	}
	const n = 100
	for i := range n {
		if err := ch.PublishWithContext(context.Background(), "", in, false, false, amqp091.Publishing{Body: fmt.Appendf(nil, `{"id":%d}`, i)}); err != nil {
			t.Fatal(err)
		}
	}
	src := fmt.Sprintf(`
name: amqp-roundtrip
source:
  amqp: {url: "${AMQP_URL}", queue: %s, prefetch: 32}
stages:
  - map: '{"id": msg.id, "seen": true}'
sink:
  amqp: {url: "${AMQP_URL}", queue: %s}
`, in, out)
	lookup := func(k string) (string, bool) { return "amqp://guest:guest@127.0.0.1:5672/", k == "AMQP_URL" }
	cfg, err := dsl.Parse("roundtrip.yaml", []byte(src), &dsl.Options{Lookup: lookup})
	if err != nil {
		t.Fatal(err)
	}
	p, err := dsl.Compile(cfg, &dsl.CompileOptions{Options: dsl.Options{Lookup: lookup}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	ds, err := ch.Consume(out, "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	timeout := time.After(time.Minute)
	for len(got) < n {
		select {
		case d := <-ds:
			got = append(got, string(d.Body))
		case <-timeout:
			t.Fatalf("got %d of %d messages", len(got), n)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf(`{"id":%d,"seen":true}`, i))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("got %q..., want %q...", got[:3], want[:3])
	}
}

func dialOrSkip(t *testing.T) *amqp091.Connection {
	t.Helper()
	c, err := net.DialTimeout("tcp", "127.0.0.1:5672", 2*time.Second)
	var conn *amqp091.Connection
	if err == nil {
		c.Close()
		conn, err = amqp091.Dial("amqp://guest:guest@127.0.0.1:5672/")
	}
	if err != nil {
		if os.Getenv("PIPE_REQUIRE_SERVICES") == "1" {
			t.Fatalf("RabbitMQ at 127.0.0.1:5672 is required (PIPE_REQUIRE_SERVICES=1): %v", err)
		}
		t.Skipf("RabbitMQ not reachable at 127.0.0.1:5672 (guest/guest): %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
