package amqp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"go.uber.org/goleak"

	"github.com/pipe-dsl/pipe/connectors/internal/conntest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// broker is a plain client connection for producing and inspecting test
// queues.
type broker struct {
	t    testing.TB
	conn *amqp091.Connection
	ch   *amqp091.Channel
}

// needBroker connects to the local RabbitMQ, or skips the test when it is
// unreachable (fails instead with PIPE_REQUIRE_SERVICES=1).
func needBroker(t testing.TB) *broker {
	t.Helper()
	c, err := net.DialTimeout("tcp", "127.0.0.1:5672", 2*time.Second)
	if err == nil {
		c.Close()
	}
	var conn *amqp091.Connection
	if err == nil {
		conn, err = amqp091.Dial(DefaultURL)
	}
	if err != nil {
		conntest.Unavailable(t, "RabbitMQ on 127.0.0.1:5672 (guest/guest)", err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &broker{t: t, conn: conn, ch: ch}
}

// queue declares a durable queue with a unique name, deleted after the test.
func (b *broker) queue(prefix string) string {
	b.t.Helper()
	var r [4]byte
	_, _ = rand.Read(r[:])
	name := fmt.Sprintf("pipe-test-%s-%s", strings.ToLower(prefix), hex.EncodeToString(r[:]))
	if _, err := b.ch.QueueDeclare(name, true, false, false, false, nil); err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() {
		// A fresh channel: the test's may be closed by then.
		if ch, err := b.conn.Channel(); err == nil {
			_, _ = ch.QueueDelete(name, false, false, false)
			ch.Close()
		}
	})
	return name
}

func (b *broker) publish(queue string, bodies []string, headers amqp091.Table) {
	b.t.Helper()
	if err := b.ch.Confirm(false); err != nil {
		b.t.Fatal(err)
	}
	ctx := context.Background()
	for _, body := range bodies {
		dc, err := b.ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, false, false, amqp091.Publishing{Body: []byte(body), Headers: headers})
		if err != nil {
			b.t.Fatal(err)
		}
		if !dc.Wait() {
			b.t.Fatalf("publish to %s not confirmed", queue)
		}
	}
}

// consume returns the first n deliveries of queue, acking them; it fails
// the test if they do not arrive within a minute.
func (b *broker) consume(queue string, n int) []amqp091.Delivery {
	b.t.Helper()
	ch, err := b.conn.Channel()
	if err != nil {
		b.t.Fatal(err)
	}
	defer ch.Close()
	ds, err := ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	timeout := time.NewTimer(time.Minute)
	defer timeout.Stop()
	var got []amqp091.Delivery
	for len(got) < n {
		select {
		case d := <-ds:
			_ = d.Ack(false)
			got = append(got, d)
		case <-timeout.C:
			b.t.Fatalf("consumed %d of %d messages from %s", len(got), n, queue)
		}
	}
	return got
}

// depth returns how many messages queue holds, ready or unacked.
func (b *broker) depth(queue string) int {
	b.t.Helper()
	ch, err := b.conn.Channel()
	if err != nil {
		b.t.Fatal(err)
	}
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return q.Messages
}

func bodies(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(`{"%s":%d}`, prefix, i)
	}
	return out
}
