package nats_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pipe-dsl/pipe/dsl"
	"github.com/pipe-dsl/pipe/pipeline"
)

func TestGivenAKilledProcessHeldMessagesWhenTheSourceRewindsThenTheyComeFirstAndInStreamOrder(t *testing.T) {
	js := server(t)
	in := unique(t)
	newStream(t, js, in)
	publish(t, js, in+".a", bodies("id", 10))
	// Given a durable consumer whose previous process acked 1 and 2, then
	// died holding 3, 4 and 5 (redelivered only after ack_wait, an hour),
	c, err := js.CreateOrUpdateConsumer(t.Context(), in, jetstream.ConsumerConfig{
		Durable: "win", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Hour, MaxDeliver: -1})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.Fetch(5, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for msg := range batch.Messages() {
		if n++; n <= 2 {
			if err := msg.DoubleAck(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n != 5 {
		t.Fatalf("fetched %d, want 5", n)
	}
	// When a new process starts with rewind: true,
	rec := newRecorder()
	p := compile(t, fmt.Sprintf(`
name: rewind
source:
  nats_jetstream: {stream: %s, durable: win, create: true, rewind: true, ack_wait: 1h}
sink:
  drop: {}
`, in), map[string]pipeline.Sink{"sink": rec})
	stop := start(t, p)
	got := collect(t, rec.C, 8, 10*time.Second)
	// Then it receives 3 to 10 in stream order, the held ones first.
	for i, m := range got {
		if seq, _ := strconv.Atoi(m.Meta["nats_stream_seq"]); seq != i+3 {
			t.Fatalf("message %d has stream sequence %d, want %d", i, seq, i+3)
		}
	}
	settled(t, js, in, "win")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestRewindWithoutCreateIsRefused(t *testing.T) {
	c, err := dsl.Parse("rewind.yaml", []byte(`
name: rewind
source:
  nats_jetstream: {stream: s, durable: d, rewind: true}
sink:
  drop: {}
`), nil)
	if err == nil {
		_, err = dsl.Compile(c, nil)
	}
	if err == nil || !strings.Contains(err.Error(), "needs create: true") {
		t.Fatalf("rewind without create: error %v, want one saying it needs create: true", err)
	}
}
