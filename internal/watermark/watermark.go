// Package watermark tracks the highest position up to which every message a
// source read has been acknowledged, so the source commits only positions it
// can restart from without losing anything.
package watermark

import "sync"

const (
	pending = iota
	acked
	nacked
)

type entry[P any] struct {
	pos   P
	state uint8
}

// Tracker is the contiguous-acked watermark of positions added in read order
// (offsets of one Kafka partition, cursor values of a query). Acks may arrive
// in any order; the mark advances only over an unbroken prefix of acked
// positions, and never past a nacked one. The zero value is ready to use; a
// Tracker is safe for concurrent use.
//
//	added:   1 2 3 4 5
//	acked:   1 2 _ 4 _     Mark = 2
//	ack 3:   1 2 3 4 _     Mark = 4
type Tracker[P any] struct {
	mu         sync.Mutex
	next       uint64 // ticket of the next Add
	base       uint64 // ticket of queue[0]
	queue      []entry[P]
	unresolved int
	mark       P
	hasMark    bool
	changed    bool
	failed     bool
}

// Add records position p as read and returns its ticket for Ack or Nack.
func (t *Tracker[P]) Add(p P) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.queue) == 0 {
		t.base = t.next
	}
	t.queue = append(t.queue, entry[P]{pos: p})
	t.unresolved++
	t.next++
	return t.next - 1
}

// Ack marks a ticket delivered and advances the mark over the acked prefix.
// Tickets from before a Rewind, and repeated calls, are ignored.
func (t *Tracker[P]) Ack(ticket uint64) { t.resolve(ticket, acked) }

// Nack marks a ticket failed: the mark stops before it until Rewind.
func (t *Tracker[P]) Nack(ticket uint64) { t.resolve(ticket, nacked) }

func (t *Tracker[P]) resolve(ticket uint64, state uint8) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ticket < t.base || ticket-t.base >= uint64(len(t.queue)) {
		return
	}
	e := &t.queue[ticket-t.base]
	if e.state != pending {
		return
	}
	e.state = state
	t.unresolved--
	if state == nacked {
		t.failed = true
		return
	}
	i := 0
	for i < len(t.queue) && t.queue[i].state == acked {
		t.mark, t.hasMark, t.changed = t.queue[i].pos, true, true
		i++
	}
	if i > 0 {
		t.queue = t.queue[i:]
		t.base += uint64(i)
	}
}

// Mark returns the watermark (ok is false before the first advance) and
// whether it changed since the previous Mark call.
func (t *Tracker[P]) Mark() (p P, ok, changed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	changed, t.changed = t.changed, false
	return t.mark, t.hasMark, changed
}

// Head returns the earliest position not yet passed by the mark: after a
// nack, once Unresolved is 0, the first position to read again.
func (t *Tracker[P]) Head() (p P, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.queue) == 0 {
		return p, false
	}
	return t.queue[0].pos, true
}

// Unresolved is the number of positions neither acked nor nacked.
func (t *Tracker[P]) Unresolved() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.unresolved
}

// Failed reports whether a position was nacked since the last Rewind.
func (t *Tracker[P]) Failed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}

// Rewind forgets every position after the mark, so the source can read them
// again from the mark, and clears Failed. Call it only when Unresolved is 0:
// later resolutions of forgotten tickets are ignored.
func (t *Tracker[P]) Rewind() (p P, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.queue = t.queue[:0]
	t.base = t.next
	t.unresolved = 0
	t.failed = false
	return t.mark, t.hasMark
}
