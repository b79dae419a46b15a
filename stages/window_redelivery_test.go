package stages

import (
	"testing"
	"time"
)

// Tests of a redelivery that reaches a durable window while the original
// is folded but not yet committed (window_store_outage_test.go has the
// helpers).

func TestGivenADurableWindowWhenAMessageFoldedSinceTheLastCheckpointIsRedeliveredThenTheCopyIsAckedOnlyByTheNextCheckpoint(t *testing.T) {
	// A store outage longer than the source's ack_wait makes JetStream
	// redeliver messages the stage has folded but not yet committed. Acking
	// such a copy at once would ack its position before any checkpoint
	// holds it: a crash then loses it.
	for name, backend := range proxiedBackends() {
		t.Run(name, func(t *testing.T) {
			b, _ := backend(t)
			out := &tableOutlet{t: t, rows: map[string]string{}}
			br := newCountingBroker()
			// Given a run that committed 0..49 and folded 50..59 since,
			r := startOutageRun(t, b, out)
			for _, m := range msgs(br, 0, 50) {
				r.send(m)
			}
			r.clock.Advance(time.Second)
			if err := <-r.committed; err != nil {
				t.Fatalf("first checkpoint: %v", err)
			}
			for _, m := range msgs(br, 50, 60) {
				r.send(m)
			}
			// when copies of 45..59 are redelivered,
			for _, m := range msgs(br, 45, 60) {
				r.send(m)
			}
			// then the copies of committed 45..49 are acked at once, those of
			// 50..59 are held like their originals,
			acks := func(lo, hi int) (n int) {
				br.mu.Lock()
				defer br.mu.Unlock()
				for i := lo; i < hi; i++ {
					n += br.acks[i]
				}
				return n
			}
			if got := acks(45, 50); got != 10 {
				t.Errorf("offsets 45..49 acked %d times, want 10 (once by the checkpoint, once as committed replays)", got)
			}
			if got := acks(50, 60); got != 0 {
				t.Fatalf("offsets 50..59, folded but not committed, acked %d times, want 0", got)
			}
			if got := r.fig("replayed_skipped"); got != 15 {
				t.Errorf("replayed_skipped = %v, want 15", got)
			}
			// and the next checkpoint acks originals and copies.
			r.clock.Advance(time.Second)
			if err := <-r.committed; err != nil {
				t.Fatalf("second checkpoint: %v", err)
			}
			if got := acks(50, 60); got != 20 {
				t.Fatalf("offsets 50..59 acked %d times after their checkpoint, want 20 (originals and copies)", got)
			}
		})
	}
}

func TestGivenADurableWindowWhenACopyOfAnUncommittedMessageArrivesAndTheRunStopsHardThenNeitherIsAcked(t *testing.T) {
	b, _ := proxiedBackends()["redis"](t)
	out := &tableOutlet{t: t, rows: map[string]string{}}
	br := newCountingBroker()
	// Given a run that committed nothing and folded 0..9, then got copies of
	// 0..9 (redelivered after ack_wait while the store was slow or down),
	r := startOutageRun(t, b, out)
	for _, m := range append(msgs(br, 0, 10), msgs(br, 0, 10)...) {
		r.send(m)
	}
	// when it stops hard before any checkpoint,
	r.cancel()
	if err := <-r.done; err == nil {
		t.Error("a hard stop holding messages returned nil")
	}
	r.done <- nil
	// then no offset is acked (the broker redelivers all ten to the next
	// run, which has none of them in its state) and each delivery is nacked.
	br.ackedOnce(t, 0)
	for i, n := range br.nacked() {
		if n != 2 {
			t.Errorf("offset %d nacked %d times, want 2 (original and copy)", i, n)
		}
	}
}
