package pipeline

import (
	"context"
	"time"
)

// Messages travel between nodes in chains: a Processor, Sink or dead-letter
// node's input channel carries the head of a chain of up to node.link
// messages linked by Message.next, so one channel operation (and one wake-up
// of the consumer) hands on many messages. Chains are formed only from
// messages already in hand (a source's [SendAll], or what one worker made
// of one input chain), never by waiting for more, so they add no latency.
// A Stage's input stays one message per element: its Run reads the channel
// itself.
//
// Backpressure keeps its bound in messages: a node with buffer B has chains
// of at most L = clamp(B/8, 1, maxLink) messages and ceil(B/L) slots, so at
// most about B messages wait, as before; with B <= 15 chains are single
// messages and the channel behaves exactly as one of B messages.

// maxLink bounds a chain's length.
const maxLink = 64

// makeInput creates n's input channel; n.opts.Buffer is already set.
func (n *node) makeInput() {
	if n.role == RoleStage && n.stage != nil {
		n.in = make(chan *Message, n.opts.Buffer)
		return
	}
	n.chained = true
	n.link = min(max(n.opts.Buffer/8, 1), maxLink)
	n.in = make(chan *Message, (n.opts.Buffer+n.link-1)/n.link)
}

// queuedNow returns how many messages wait in n's input.
func (n *node) queuedNow() int {
	if n.chained {
		return int(max(n.queued.Load(), 0))
	}
	return len(n.in)
}

// chainLen returns how many messages the chain headed by m holds.
func chainLen(m *Message) int64 {
	if m.links == 0 {
		return 1
	}
	return int64(m.links)
}

// entered accounts for count messages put into t's input. The consumer
// may have taken them already, so queued can dip below zero for a moment.
func (t *node) entered(count int) {
	t.stats.in.Add(int64(count))
	if t.chained {
		t.queued.Add(int64(count))
	}
}

// received accounts for a chain taken from n's input.
func (n *node) received(m *Message) {
	if n.chained {
		n.queued.Add(-chainLen(m))
	}
}

// unlink detaches m from its chain and returns the next message, or nil.
func unlink(m *Message) *Message {
	next := m.next
	m.next, m.links = nil, 0
	return next
}

// put hands the chain head (count messages, already entered for t) to t,
// blocking while t's input is full, until ctx or the hard stop. On failure
// every message of the chain is abandoned at o's node.
func (o *outlet) put(ctx context.Context, t *node, head *Message, count int) error {
	if count > 1 {
		head.links = int32(count)
	}
	select {
	case t.in <- head:
		t.entered(count)
		return nil
	default:
	}
	select {
	case t.in <- head:
		t.entered(count)
		return nil
	case <-ctx.Done():
	case <-o.hard.Done():
	}
	for m := head; m != nil; {
		next := unlink(m)
		o.abandon(m)
		m = next
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return o.hard.Err()
}

// hold adds m, already entered for t, to the outlet's pending chain for t,
// handing the chain on once it is t's full length. Only a worker's outlet
// holds (see outlet.batching); its worker calls flush after each input
// chain.
func (o *outlet) hold(ctx context.Context, t *node, m *Message) error {
	if o.head != nil && o.to != t {
		if err := o.flush(ctx); err != nil {
			o.abandon(m)
			return err
		}
	}
	if o.head == nil {
		o.head, o.to = m, t
	} else {
		o.tail.next = m
	}
	o.tail = m
	o.count++
	if o.count >= min(t.link, o.holdMax) {
		return o.flush(ctx)
	}
	return nil
}

// maxHold bounds how long a worker holds a result back while it handles
// the rest of its input chain.
const maxHold = time.Millisecond

// holdFor sets how many results the worker may hold: as many as its node
// handles in maxHold on average, so that a slow processor (an HTTP call)
// hands each result on at once, as if unchained.
func (o *outlet) holdFor(n *node) {
	o.holdMax = maxLink
	if mean := n.stats.latency.mean(); mean > 0 {
		o.holdMax = int(min(max(maxHold/mean, 1), maxLink))
	}
}

// flush hands on the pending chain, counting it as out on success.
func (o *outlet) flush(ctx context.Context) error {
	if o.head == nil {
		return nil
	}
	head, t, count := o.head, o.to, o.count
	o.head, o.tail, o.to, o.count = nil, nil, nil, 0
	if err := o.put(ctx, t, head, count); err != nil {
		return err
	}
	o.n.stats.out.Add(int64(count))
	return nil
}

// SendAll hands ms on in order, as out.Send would one by one, for a source
// that has several messages in hand (lines already read into its buffer,
// a fetched batch). The runtime's outlet passes them to the next node in
// one channel operation per up to 64 messages instead of one each; any
// other Outlet gets them one Send at a time. SendAll never waits for more
// messages. Ownership of every message passes to out; ms itself is not
// kept, so the caller may reuse it. On error (the stop came first) every
// message not handed on has been nacked.
func SendAll(ctx context.Context, out Outlet, ms []*Message) error {
	if o, ok := out.(*outlet); ok {
		return o.sendAll(ctx, ms)
	}
	for i, m := range ms {
		if err := out.Send(ctx, m); err != nil {
			for _, rest := range ms[i+1:] {
				rest.Nack(err)
			}
			return err
		}
	}
	return nil
}

func (o *outlet) sendAll(ctx context.Context, ms []*Message) error {
	if o.n.role == RoleSource {
		// Set before anything can fail, so that a message nacked unsent
		// counts at the source as Send's would.
		for _, m := range ms {
			m.tx.src = &o.n.stats
		}
	}
	targets := o.n.outs[""]
	if len(targets) != 1 || !targets[0].chained {
		for i, m := range ms {
			if err := o.Send(ctx, m); err != nil {
				for _, rest := range ms[i+1:] {
					o.abandon(rest)
				}
				return err
			}
		}
		return nil
	}
	t := targets[0]
	for len(ms) > 0 {
		k := min(len(ms), t.link)
		var head, tail *Message
		for _, m := range ms[:k] {
			o.leaving("", m)
			o.p.enter(t, m)
			if head == nil {
				head = m
			} else {
				tail.next = m
			}
			tail = m
		}
		if err := o.put(ctx, t, head, k); err != nil {
			for _, rest := range ms[k:] {
				o.abandon(rest)
			}
			return err
		}
		o.n.stats.out.Add(int64(k))
		ms = ms[k:]
	}
	return nil
}
