package nats_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pipe-dsl/pipe/pipeline"
)

func TestEveryMessagePublishedComesOutOfTheSinkStream(t *testing.T) {
	js := server(t)
	in, out := unique(t), unique(t)+"_out"
	newStream(t, js, in)
	newStream(t, js, out)
	const n = 3000
	want := bodies("id", n)
	publish(t, js, in+".orders", want)

	p := compile(t, fmt.Sprintf(`
name: roundtrip
source:
  nats_jetstream: {stream: %s, durable: pipe, create: true, fetch_size: 100}
sink:
  nats_jetstream: {subject: %s.clean, msg_id: 'meta.nats_stream + ":" + meta.nats_stream_seq'}
`, in, out), nil)
	stop := start(t, p)

	// Given the pipeline copies every message, the output stream gets them all.
	cons, err := js.CreateOrUpdateConsumer(t.Context(), out, jetstream.ConsumerConfig{Durable: "check", AckPolicy: jetstream.AckNonePolicy})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < n {
		batch, err := cons.Fetch(n-len(got), jetstream.FetchMaxWait(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		before := len(got)
		for m := range batch.Messages() {
			got = append(got, string(m.Data()))
		}
		if len(got) == before {
			t.Fatalf("output stream has %d of %d messages", len(got), n)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("output differs from input: %d vs %d messages", len(got), len(want))
	}
	info := settled(t, js, in, "pipe")
	if info.NumRedelivered != 0 {
		t.Errorf("redelivered = %d, want 0", info.NumRedelivered)
	}
}

func TestHeadersBecomeMetaAndMetaBecomesHeaders(t *testing.T) {
	js := server(t)
	in, out := unique(t), unique(t)+"_out"
	newStream(t, js, in)
	newStream(t, js, out)
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	msg := &natsgo.Msg{Subject: in + ".a", Data: []byte(`{"x":1}`), Header: natsgo.Header{"traceparent": {tp}, "Tenant": {"acme"}}}
	if _, err := js.PublishMsg(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	p := compile(t, fmt.Sprintf(`
name: headers
sources:
  in:
    nats_jetstream: {stream: %s, durable: pipe, create: true}
sinks:
  seen:
    inputs: [in]
    drop: {}
  out:
    inputs: [in]
    nats_jetstream: {subject: %s.a}
`, in, out), map[string]pipeline.Sink{"seen": rec})
	stop := start(t, p)
	m := collect(t, rec.C, 1, 10*time.Second)[0]
	for k, want := range map[string]string{
		"traceparent": tp, "Tenant": "acme", "nats_subject": in + ".a",
		"nats_stream": in, "nats_stream_seq": "1", "nats_consumer_seq": "1", "nats_delivered": "1",
	} {
		if m.Meta[k] != want {
			t.Errorf("Meta[%q] = %q, want %q", k, m.Meta[k], want)
		}
	}
	cons, err := js.CreateOrUpdateConsumer(t.Context(), out, jetstream.ConsumerConfig{AckPolicy: jetstream.AckNonePolicy})
	if err != nil {
		t.Fatal(err)
	}
	got, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if h := got.Headers(); h.Get("traceparent") != tp || h.Get("Tenant") != "acme" || h.Get("nats_subject") != "" {
		t.Errorf("published headers = %v, want traceparent and Tenant without nats_* keys", h)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestAFailedWriteIsRedeliveredByTheServerThenDelivered(t *testing.T) {
	js := server(t)
	in := unique(t)
	newStream(t, js, in)
	want := bodies("id", 20)
	publish(t, js, in+".a", want)
	rec := newRecorder()
	failed := false
	rec.Fail = func(m *pipeline.Message) error {
		if string(m.Body) == want[7] && !failed {
			failed = true
			return errors.New("sink down")
		}
		return nil
	}
	// Without a dead-letter sink the failure nacks the message.
	p := compile(t, fmt.Sprintf(`
name: redeliver
source:
  nats_jetstream: {stream: %s, durable: pipe, create: true, nak_delay: 10ms}
sink:
  drop: {}
`, in), map[string]pipeline.Sink{"sink": rec})
	stop := start(t, p)
	got := collect(t, rec.C, len(want), 10*time.Second)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	var again *pipeline.Message
	var seen []string
	for _, m := range got {
		seen = append(seen, string(m.Body))
		if string(m.Body) == want[7] {
			again = m
		}
	}
	slices.Sort(seen)
	slices.Sort(want)
	if !slices.Equal(seen, want) {
		t.Fatalf("delivered %v, want %v", seen, want)
	}
	if again.Meta["nats_delivered"] != "2" {
		t.Errorf("failed message delivered with nats_delivered %q, want 2", again.Meta["nats_delivered"])
	}
	if info := settled(t, js, in, "pipe"); info.NumRedelivered != 0 {
		t.Errorf("consumer still redelivering %d", info.NumRedelivered)
	}
}

func TestARejectedMessageIsDeadLetteredAndAcked(t *testing.T) {
	js := server(t)
	in := unique(t)
	newStream(t, js, in)
	want := bodies("id", 10)
	publish(t, js, in+".a", append([]string{"poison"}, want...))
	rec, dlq := newRecorder(), newRecorder()
	rec.Fail = func(m *pipeline.Message) error {
		if string(m.Body) == "poison" {
			return errors.New("rejected")
		}
		return nil
	}
	p := compile(t, fmt.Sprintf(`
name: poison
source:
  nats_jetstream: {stream: %s, durable: pipe, create: true, nak_delay: 10ms}
sink:
  drop: {}
dead_letter:
  drop: {}
`, in), map[string]pipeline.Sink{"sink": rec, "dead_letter": dlq})
	stop := start(t, p)
	collect(t, rec.C, len(want), 10*time.Second)
	dl := envelope(t, collect(t, dlq.C, 1, 10*time.Second)[0])
	if dl.Reason != pipeline.ReasonSinkError || dl.PayloadText != "poison" || dl.Meta["nats_delivered"] != "1" {
		t.Errorf("dead letter = %+v, want the poison message with reason sink_error, delivered once", dl)
	}
	settled(t, js, in, "pipe")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if len(dlq.C) != 0 {
		t.Errorf("%d more dead letters: the poison message was redelivered", len(dlq.C))
	}
}

func TestAMessageDeliveredMoreThanMaxDeliverGoesToTheDeadLetterSink(t *testing.T) {
	js := server(t)
	in := unique(t)
	newStream(t, js, in)
	publish(t, js, in+".a", []string{"crash"})
	rec, dlq := newRecorder(), newRecorder()
	rec.Fail = func(*pipeline.Message) error { return errors.New("sink down") }
	// Given a dead-letter sink that is down for sink errors, each failure nacks.
	dlq.Fail = func(m *pipeline.Message) error {
		if envelope(t, m).Reason == pipeline.ReasonSinkError {
			return errors.New("dead-letter sink down")
		}
		return nil
	}
	p := compile(t, fmt.Sprintf(`
name: maxdeliver
source:
  nats_jetstream: {stream: %s, durable: pipe, create: true, nak_delay: 1ms, max_deliver: 2}
sink:
  drop: {}
dead_letter:
  drop: {}
`, in), map[string]pipeline.Sink{"sink": rec, "dead_letter": dlq})
	stop := start(t, p)
	dl := envelope(t, collect(t, dlq.C, 1, 10*time.Second)[0])
	if dl.Reason != pipeline.ReasonRetries || dl.Stage != "source" || dl.Meta["nats_delivered"] != "3" {
		t.Errorf("dead letter = %+v, want reason retries_exhausted from the source on the third delivery", dl)
	}
	settled(t, js, in, "pipe")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestABodyOverMaxBytesIsDeadLetteredAndAcked(t *testing.T) {
	js := server(t)
	in := unique(t)
	newStream(t, js, in)
	big := strings.Repeat("x", 2048)
	publish(t, js, in+".a", []string{"small", big})
	rec, dlq := newRecorder(), newRecorder()
	p := compile(t, fmt.Sprintf(`
name: maxbytes
source:
  nats_jetstream: {stream: %s, durable: pipe, create: true, max_bytes: 1KiB}
sink:
  drop: {}
dead_letter:
  drop: {}
`, in), map[string]pipeline.Sink{"sink": rec, "dead_letter": dlq})
	stop := start(t, p)
	if m := collect(t, rec.C, 1, 10*time.Second)[0]; string(m.Body) != "small" {
		t.Errorf("delivered %q, want small", m.Body)
	}
	dl := envelope(t, collect(t, dlq.C, 1, 10*time.Second)[0])
	if dl.Reason != pipeline.ReasonInvalidPayload || dl.PayloadText != big || dl.Meta["nats_stream_seq"] != "2" {
		t.Errorf("dead letter reason %q, meta %v: want invalid_payload for the big message", dl.Reason, dl.Meta)
	}
	settled(t, js, in, "pipe")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestAFilteredConsumerGetsOnlyItsSubject(t *testing.T) {
	js := server(t)
	in := unique(t)
	newStream(t, js, in)
	publish(t, js, in+".eu", []string{"eu1", "eu2"})
	publish(t, js, in+".us", []string{"us1"})
	publish(t, js, in+".eu", []string{"eu3"})
	rec := newRecorder()
	p := compile(t, fmt.Sprintf(`
name: filter
source:
  nats_jetstream: {stream: %s, durable: eu, create: true, filter_subject: %s.eu}
sink:
  drop: {}
`, in, in), map[string]pipeline.Sink{"sink": rec})
	stop := start(t, p)
	var got []string
	for _, m := range collect(t, rec.C, 3, 10*time.Second) {
		got = append(got, string(m.Body))
	}
	settled(t, js, in, "eu")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"eu1", "eu2", "eu3"}; !slices.Equal(got, want) {
		t.Errorf("delivered %v, want %v in stream order", got, want)
	}
	if len(rec.C) != 0 {
		t.Errorf("%d more messages: the filter let others through", len(rec.C))
	}
}

func TestTheSourceBindsToAnExistingConsumer(t *testing.T) {
	js := server(t)
	in := unique(t)
	newStream(t, js, in)
	if _, err := js.CreateOrUpdateConsumer(t.Context(), in, jetstream.ConsumerConfig{Durable: "ops", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	publish(t, js, in+".a", bodies("id", 5))
	rec := newRecorder()
	p := compile(t, fmt.Sprintf(`
name: bind
source:
  nats_jetstream: {stream: %s, durable: ops}
sink:
  drop: {}
`, in), map[string]pipeline.Sink{"sink": rec})
	stop := start(t, p)
	collect(t, rec.C, 5, 10*time.Second)
	settled(t, js, in, "ops")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestMessagesAbandonedAtTheDrainDeadlineComeBackBeforeAckWait(t *testing.T) {
	js := server(t)
	in := unique(t)
	newStream(t, js, in)
	want := bodies("id", 500)
	publish(t, js, in+".a", want)
	yaml := fmt.Sprintf(`
name: stop
drain_timeout: 100ms
source:
  nats_jetstream: {stream: %s, durable: pipe, create: true, ack_wait: 1h}
sink:
  drop: {}
`, in)
	// Given a run whose sink hangs, so that the stop hits the drain deadline,
	first := newRecorder()
	first.Hold, first.Entered = make(chan struct{}), make(chan struct{}, 1)
	stop := start(t, compile(t, yaml, map[string]pipeline.Sink{"sink": first}))
	<-first.Entered
	var ab *pipeline.AbandonedError
	if err := stop(); !errors.As(err, &ab) {
		t.Fatalf("Run = %v, want an AbandonedError", err)
	}
	// a second run gets every message at once, not after the 1h ack_wait.
	second := newRecorder()
	stop = start(t, compile(t, yaml, map[string]pipeline.Sink{"sink": second}))
	var got []string
	for _, m := range collect(t, second.C, len(want), 10*time.Second) {
		got = append(got, string(m.Body))
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("the second run delivered %d messages, want each of the %d once", len(got), len(want))
	}
	settled(t, js, in, "pipe")
}
