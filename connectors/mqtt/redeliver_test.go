package mqtt

import (
	"errors"
	"testing"

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
