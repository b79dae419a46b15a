package amqp_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/pipe-dsl/pipe/connectors/internal/conntest"
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

// POSTed NDJSON reaches RabbitMQ before the 200: by the time the client
// has its answer, every event can be consumed from the queue.
func TestHTTPToAMQPAnswersAfterConfirm(t *testing.T) {
	conn := dialOrSkip(t)
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q := fmt.Sprintf("pipe-test-http-%d", time.Now().UnixNano())
	t.Cleanup(func() { _, _ = ch.QueueDelete(q, false, false, false) })
	src := fmt.Sprintf(`
name: http-to-amqp
source:
  http_server: {address: "127.0.0.1:0", path: /events, framing: ndjson, token: "${TOKEN}"}
sink:
  amqp: {queue: %s, declare: true}
`, q)
	lookup := func(k string) (string, bool) { return "t0ken", k == "TOKEN" }
	cfg, err := dsl.Parse("http.yaml", []byte(src), &dsl.Options{Lookup: lookup})
	if err != nil {
		t.Fatal(err)
	}
	listening := &listenLog{addr: make(chan string, 1)}
	p, err := dsl.Compile(cfg, &dsl.CompileOptions{Options: dsl.Options{Lookup: lookup}, Logger: slog.New(listening)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var addr string
	select {
	case addr = <-listening.addr:
	case err := <-done:
		t.Fatalf("Run = %v before listening", err)
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	body := strings.Repeat(`{"n":1}`+"\n", 25)
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/events", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer t0ken")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST = %d, want 200", resp.StatusCode)
	}
	got, err := ch.QueueDeclarePassive(q, true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Messages != 25 {
		t.Fatalf("queue holds %d messages when the 200 arrives, want 25", got.Messages)
	}
}

// listenLog is a slog handler that reports the address the http_server
// source logs when it starts listening.
type listenLog struct{ addr chan string }

func (l *listenLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *listenLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *listenLog) WithGroup(string) slog.Handler            { return l }
func (l *listenLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "listening" {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "address" {
				l.addr <- a.Value.String()
			}
			return true
		})
	}
	return nil
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
		conntest.Unavailable(t, "RabbitMQ on 127.0.0.1:5672 (guest/guest)", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
