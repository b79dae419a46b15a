package mqtt

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/connectors/internal/conntest"
	"github.com/pipe-dsl/pipe/pipeline"
)

func testSink(t *testing.T, topic string) *sink {
	t.Helper()
	s, err := newSink(&sinkConfig{Broker: DefaultBroker, Topic: topic, KeepAlive: 30 * time.Second, Reconnect: time.Second}, component.Env{Node: "out"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.(*sink).Close(context.Background()) })
	return s.(*sink)
}

func TestSinkPublishesBatchWithUserProperties(t *testing.T) {
	needBroker(t)
	topic := unique("sink")
	sub := connect(t, unique("sub"), true, 0)
	sub.subscribe(t, topic)
	s := testSink(t, topic)
	want := bodies("s", 50)
	var members []*pipeline.Message
	for _, b := range want {
		m := pipeline.NewMessage([]byte(b), nil)
		m.Meta = map[string]string{"traceparent": "00-abc-def-01", "mqtt_topic": "in/topic"}
		members = append(members, m)
	}
	conntest.Traced(t, members[0]) // its span's context replaces the incoming one
	if err := s.Write(context.Background(), pipeline.NewBatch(members)); err != nil {
		t.Fatalf("Write(batch) = %v", err)
	}
	var got []string
	for _, p := range sub.receive(t, len(want)) {
		got = append(got, string(p.Payload))
		meta := publishMeta(p)
		tp := "00-abc-def-01"
		if string(p.Payload) == want[0] {
			tp = conntest.TracedTraceparent
		}
		if meta["traceparent"] != tp {
			t.Fatalf("user properties = %v, want traceparent %s", p.Properties.User, tp)
		}
		if meta["mqtt_topic"] != topic {
			t.Fatalf("mqtt_* metadata was published as a user property: %v", p.Properties.User)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, sorted(want)) {
		t.Fatalf("received %q, want %q", got, want)
	}
}

func TestSinkRoundTripFromSource(t *testing.T) {
	needBroker(t)
	id, in, out := unique("src"), unique("in"), unique("out")
	session(t, id, in)
	sub := connect(t, unique("sub"), true, 0)
	sub.subscribe(t, out)
	want := bodies("rt", 200)
	connect(t, unique("pub"), true, 0).publish(t, in, want, nil)
	stop := run(t, testSource(t, id, in), testSink(t, out), nil)
	var got []string
	for _, p := range sub.receive(t, len(want)) {
		got = append(got, string(p.Payload))
	}
	stop()
	slices.Sort(got)
	if !slices.Equal(slices.Compact(got), sorted(want)) {
		t.Fatalf("round trip delivered %d distinct messages, want %d", len(slices.Compact(got)), len(want))
	}
	assertSessionEmpty(t, id, in)
}

func TestConfigErrors(t *testing.T) {
	for _, b := range []string{"http://127.0.0.1:1883", "tcp://user:hunter2@127.0.0.1:1883", "::"} {
		_, err := newSink(&sinkConfig{Broker: b, Topic: "x"}, component.Env{})
		if err == nil {
			t.Errorf("newSink(broker %q) = nil error", b)
		} else if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error %q shows the password", err)
		}
	}
}
