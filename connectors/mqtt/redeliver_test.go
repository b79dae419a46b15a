package mqtt

import (
	"errors"
	"testing"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"

	"github.com/pipe-dsl/pipe/pipeline"
)

// TestSourceNackRedeliversOnlyTheFailedMessages: Given 20 messages of which
// 3 fail once at the sink and no dead-letter sink, when each failure drops
// the connection so the broker redelivers, then the 3 are written twice and
// every other message exactly once: the redelivered copies of delivered
// messages are acked without reaching the sink (it was 38 writes for 20
// messages before).
func TestSourceNackRedeliversOnlyTheFailedMessages(t *testing.T) {
	needBroker(t)
	id, topic := unique("src"), unique("topic")
	session(t, id, topic)
	want := bodies("r", 20)
	connect(t, unique("pub"), true, 0).publish(t, topic, want, nil)
	failing := map[string]bool{want[4]: true, want[9]: true, want[14]: true}
	sink := newCollector(len(want))
	sink.Fail = func(m *pipeline.Message, attempt int) error {
		if failing[string(m.Body)] && attempt == 1 {
			return errors.New("sink down")
		}
		return nil
	}
	stop := run(t, testSource(t, id, topic), sink, nil)
	waitFor(t, sink.Full, "every message at the sink")
	stop()
	writes := 0
	for _, b := range want {
		n := sink.Seen[b]
		writes += n
		if wantN := map[bool]int{true: 2, false: 1}[failing[b]]; n != wantN {
			t.Errorf("%s written %d times, want %d", b, n, wantN)
		}
	}
	t.Logf("20 messages, 3 failing once: %d writes", writes)
	assertSessionHoldsOnlyDuplicates(t, id, topic, want)
}

func publish(id uint16, dup bool, payload string) paho.PublishReceived {
	return paho.PublishReceived{Packet: paho.PublishFromPacketPublish(&packets.Publish{
		PacketID: id, QoS: 1, Duplicate: dup, Topic: "t", Payload: []byte(payload), Properties: &packets.Properties{}})}
}

// TestRedeliveriesKeepCopiesOutOfThePipeline steps through the copies a
// reconnection brings, without a broker.
func TestRedeliveriesKeepCopiesOutOfThePipeline(t *testing.T) {
	var r redeliveries
	first := publish(7, false, "a")
	if !r.admit(first) {
		t.Fatal("admit(a) = false, want a new message passed on")
	}
	copyA := publish(7, true, "a")
	if r.admit(copyA) {
		t.Fatal("admit(DUP a while a is in the pipeline) = true, want it to wait")
	}
	if dup := r.resolved(first.Packet, true); dup == nil || dup.Packet != copyA.Packet {
		t.Fatalf("resolved(a, ok) = %v, want the waiting copy to ack", dup)
	}
	// Another message reusing the identifier after a's PUBACK.
	r.forget(7)
	if !r.admit(publish(7, true, "b")) {
		t.Fatal("admit(DUP b on a's identifier after a's PUBACK) = false, want it passed on")
	}
	// A failed message's copy goes through the pipeline again.
	c := publish(9, false, "c")
	r.admit(c)
	copyC := publish(9, true, "c")
	if r.admit(copyC) {
		t.Fatal("admit(DUP c while c is in the pipeline) = true, want it to wait")
	}
	if dup := r.resolved(c.Packet, false); dup == nil {
		t.Fatal("resolved(c, failed) = nil, want the waiting copy, whose connection must drop")
	}
	if !r.admit(publish(9, true, "c")) {
		t.Fatal("admit(DUP c after c failed) = false, want it passed on")
	}
	// Same identifier, other payload: not a copy.
	r.admit(publish(11, false, "d"))
	if !r.admit(publish(11, true, "e")) {
		t.Fatal("admit(DUP e on d's identifier) = false, want it passed on")
	}
	// A new session forgets everything.
	r.admit(publish(12, false, "f"))
	r.reset()
	if !r.admit(publish(12, true, "f")) {
		t.Fatal("admit(DUP f after a new session) = false, want it passed on")
	}
}
