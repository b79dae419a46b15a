package pipeline

import (
	"context"
	"errors"
	"time"
)

// outlet is a node's [Outlet]: it fans messages out to the node's consumers
// and routes failures to the dead-letter sink.
type outlet struct {
	p    *Pipeline
	n    *node
	hard context.Context

	// batching is set on a worker's own outlet: results for a chained
	// consumer are held in a pending chain (head..tail, count messages, for
	// node to) and handed on by flush at the end of each input chain.
	batching   bool
	head, tail *Message
	to         *node
	count      int
	// holdMax bounds the pending chain (see holdFor).
	holdMax int
	// scratch is a worker's slice for a SliceWriter sink's writes.
	scratch []*Message
}

var _ Outlet = (*outlet)(nil)

func (o *outlet) Send(ctx context.Context, m *Message) error {
	return o.SendTo(ctx, "", m)
}

func (o *outlet) SendTo(ctx context.Context, port string, m *Message) error {
	targets := o.n.outs[port]
	if len(targets) == 0 {
		o.Drop(m, "unrouted")
		return nil
	}
	o.leaving(port, m)
	// out counts what was handed on: a message refused by the stop or by
	// ctx (a source's backpressure deadline) is not in it.
	if len(targets) == 1 {
		t := targets[0]
		if o.batching && t.chained {
			// Counted as out when the pending chain is handed on.
			o.p.enter(t, m)
			return o.hold(ctx, t, m)
		}
		err := o.send(ctx, t, m)
		if err == nil {
			o.n.stats.out.Add(1)
		}
		return err
	}
	o.n.stats.out.Add(1)
	// Copy before the first send: after it, m belongs to another goroutine.
	msgs := make([]*Message, len(targets))
	msgs[0] = m
	for i := 1; i < len(msgs); i++ {
		msgs[i] = m.Copy()
	}
	for i, t := range targets {
		if err := o.send(ctx, t, msgs[i]); err != nil {
			for _, rest := range msgs[i+1:] {
				o.abandon(rest)
			}
			return err
		}
	}
	return nil
}

// leaving does the bookkeeping of m leaving o's node on port: the
// source's transaction and trace, or the stage's Leave, and the taps.
func (o *outlet) leaving(port string, m *Message) {
	if o.n.role == RoleSource {
		m.tx.src = &o.n.stats
		if o.p.Tracer != nil {
			m.tx.traced = o.p.Tracer.Source(&o.n.info, m)
		}
	} else {
		o.p.leave(o.n, m, nil)
	}
	tapOut(o.n, port, m)
}

// send hands m alone to t. A worker's pending chain goes first, so that
// its node's output keeps its order.
func (o *outlet) send(ctx context.Context, t *node, m *Message) error {
	o.p.enter(t, m)
	if o.head != nil {
		if err := o.flush(ctx); err != nil {
			o.abandon(m)
			return err
		}
	}
	return o.put(ctx, t, m, 1)
}

func (o *outlet) Drop(m *Message, reason string) {
	o.n.stats.dropped.Add(1)
	if o.p.traced(m) {
		o.p.Tracer.Leave(&o.n.info, m, &DropError{Reason: reason})
	}
	m.Ack()
}

func (o *outlet) Fail(ctx context.Context, m *Message, err error) { o.fail(ctx, m, err, 1) }

// fail is Fail counting m as count messages in the node's failed,
// dead-lettered and nacked counters: the members a sink refused of a
// batch it accepted in part.
func (o *outlet) fail(ctx context.Context, m *Message, err error, count int64) {
	o.n.stats.failed.Add(count)
	o.n.recent.add(o.p.Clock.Now(), err)
	o.p.leave(o.n, m, err)
	dlq := o.p.dlq
	if dlq == nil {
		o.n.stats.nacked.Add(count)
		o.logFailure(m, err)
		m.Nack(err)
		return
	}
	now := o.p.Clock.Now()
	m.RecordAttempt(now)
	toDeadLetter(m, o.p, o.n, err)
	o.p.enter(dlq, m)
	select {
	case dlq.in <- m:
		dlq.entered(1)
		o.n.stats.deadLettered.Add(count)
	case <-o.hard.Done():
		o.abandon(m)
	}
}

// logFailure logs a failure with no dead-letter sink, at most once a second
// per node, counting what it suppressed.
func (o *outlet) logFailure(m *Message, err error) {
	now := time.Now().UnixNano()
	last := o.n.lastLog.Load()
	if now-last < int64(time.Second) || !o.n.lastLog.CompareAndSwap(last, now) {
		o.n.suppressed.Add(1)
		return
	}
	o.p.Logger.Warn("message failed; no dead_letter sink, nacked",
		"pipeline", o.p.Name, "stage", o.n.name, "kind", o.n.kind,
		"reason", Reason(err), "err", err, "suppressed", o.n.suppressed.Swap(0))
}

// route hands on the outcome of Process for input m.
func (o *outlet) route(ctx context.Context, m, r *Message, err error) {
	switch {
	case err == nil && r != nil:
		if r != m {
			if r.ctx == nil {
				r.ctx = m.ctx
			}
			r.inherit(m)
		}
		_ = o.Send(ctx, r)
	case err == nil:
		o.Drop(m, "filtered")
	default:
		o.routeError(ctx, m, r, err)
	}
}

// routeError is route for a non-nil err; apart so that errors.As's target
// is allocated only on this path, not for every message.
func (o *outlet) routeError(ctx context.Context, m, r *Message, err error) {
	var drop *DropError
	switch {
	case errors.As(err, &drop):
		o.Drop(m, drop.Reason)
	case ctx.Err() != nil:
		o.abandonResult(m, r)
	default:
		o.Fail(ctx, m, err)
	}
}

// abandon nacks m at the hard stop and counts it as in flight at this node.
func (o *outlet) abandon(m *Message) {
	o.n.abandoned.Add(1)
	o.p.leave(o.n, m, ErrAbandoned)
	m.Nack(ErrAbandoned)
}

func (o *outlet) abandonResult(m, r *Message) {
	o.abandon(m)
	if r != nil && r != m {
		r.Nack(ErrAbandoned)
	}
}
