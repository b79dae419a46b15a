// Package pipeline runs a graph of stages connected by bounded channels,
// acknowledging each source message once every message derived from it has
// been delivered or dead-lettered.
package pipeline

import (
	"context"
	"errors"
	"maps"
	"sync/atomic"
	"time"
)

// AckFunc is called exactly once per source message: with nil when every
// message derived from it reached a sink (or the dead-letter sink), or with
// the first error that prevented that.
type AckFunc func(err error)

// Message is the envelope that travels through a pipeline.
//
// A Message is owned by one goroutine at a time: the stage holding it may
// change it, and hands it on with [Outlet.Send] (or ends it with Ack, Nack,
// [Outlet.Fail] or [Outlet.Drop]). Body is never modified in place; use
// SetBody to replace it.
type Message struct {
	// Body is the payload, usually JSON.
	Body []byte
	// Meta holds string metadata: broker headers, HTTP headers, trace context.
	// Sources may share one map between messages (http_server shares one
	// per request): treat it as read-only and replace it to change it.
	Meta map[string]string
	// Created is when the source produced the message.
	Created time.Time

	ctx     context.Context
	decoded any
	batch   []*Message
	refused []error // with batch: each member's error from a sink's BatchError
	tx      *tx
	done    atomic.Bool
	// links is, on the head of a chain (see chain.go), how many messages
	// the chain holds; 0 on a message travelling alone.
	links int32
	// next links the messages of a chain handed between nodes in one
	// channel operation; nil outside the runtime's hand-off.
	next     *Message
	failures failures
}

// NewMessage returns a source message. ack, which may be nil, runs once every
// message derived from this one is resolved.
func NewMessage(body []byte, ack AckFunc) *Message {
	// One allocation for the message and its transaction.
	s := &sourceMessage{}
	s.t.ack = ack
	s.t.refs.Store(1)
	s.m.Body, s.m.tx, s.m.Created = body, &s.t, time.Now()
	return &s.m
}

// sourceMessage is a source message allocated with its transaction.
type sourceMessage struct {
	m Message
	t tx
}

// NewBatch returns one message standing for members. Acking the batch acks
// every member; nacking it nacks every member. Members must not be acked
// separately afterwards.
func NewBatch(members []*Message) *Message { return NewBatchFunc(members, nil) }

// NewBatchFunc is [NewBatch] with done, which may be nil, called once the
// batch is resolved (after its members) with the batch's outcome: nil when
// every copy of the batch was delivered. Batching stages use it to bound
// the batches they have outstanding.
func NewBatchFunc(members []*Message, done AckFunc) *Message {
	b := NewMessage(nil, func(err error) {
		for _, m := range members {
			m.resolve(err)
		}
		if done != nil {
			done(err)
		}
	})
	b.batch = members
	if len(members) > 0 {
		b.Created = members[0].Created
	}
	return b
}

// keepRefused narrows batch m to the members a sink refused when err is a
// [BatchError] that matches m's members, recording each one's error for
// its dead-letter envelope. It returns nil if the sink refused none of
// them, and err otherwise.
func (m *Message) keepRefused(err error) error {
	var be *BatchError
	if m.batch == nil || !errors.As(err, &be) || len(be.Errs) != len(m.batch) {
		return err
	}
	var members []*Message
	var errs []error
	for i, e := range be.Errs {
		if e != nil {
			members = append(members, m.batch[i])
			errs = append(errs, e)
		}
	}
	if members == nil {
		return nil
	}
	// A new slice: the old one may be shared with a broadcast copy. The
	// batch's ack still resolves every original member.
	m.batch, m.refused = members, errs
	return err
}

// Batch returns the members of a batch message, or nil for a single message.
func (m *Message) Batch() []*Message { return m.batch }

// Decoded returns the decoded form of Body cached by an earlier stage, or nil.
func (m *Message) Decoded() any { return m.decoded }

// SetDecoded caches v as the decoded form of the current Body.
func (m *Message) SetDecoded(v any) { m.decoded = v }

// SetBody replaces the body and forgets its cached decoded form.
func (m *Message) SetBody(b []byte) {
	m.Body = b
	m.decoded = nil
}

// Copy returns a message for a second downstream branch: same body and
// decoded form, its own metadata map, sharing m's acknowledgement. The
// source is acked only after both m and the copy are resolved.
func (m *Message) Copy() *Message {
	m.tx.refs.Add(1)
	c := &Message{
		Body:     m.Body,
		Meta:     maps.Clone(m.Meta),
		Created:  m.Created,
		ctx:      m.ctx,
		decoded:  m.decoded,
		batch:    m.batch,
		tx:       m.tx,
		failures: m.failures,
	}
	return c
}

// Context returns the message's context, which carries its trace span from
// stage to stage; it is never nil. It is not a cancellation signal: stages
// get that from the ctx argument of Process, Run and Write.
func (m *Message) Context() context.Context {
	if m.ctx == nil {
		return context.Background()
	}
	return m.ctx
}

// SetContext replaces the message's context, e.g. with one holding the
// span of the current stage.
func (m *Message) SetContext(ctx context.Context) { m.ctx = ctx }

// inherit makes r, returned by a processor in place of m, carry m's
// acknowledgement: m resolves as r does. A copy of m holds its own
// reference, so m's is released at once; a new message keeps its own ack
// (which runs first) and resolves m after it.
func (r *Message) inherit(m *Message) {
	if r.tx == m.tx {
		m.Ack()
		return
	}
	own := r.tx.ack
	r.tx.ack = func(err error) {
		if own != nil {
			own(err)
		}
		m.resolve(err)
	}
}

// Ack reports that m was delivered. Only the first Ack or Nack counts.
func (m *Message) Ack() { m.resolve(nil) }

// Nack reports that m could not be delivered; the source may redeliver it.
// Only the first Ack or Nack counts.
func (m *Message) Nack(err error) {
	if err == nil {
		err = ErrNacked
	}
	m.resolve(err)
}

func (m *Message) resolve(err error) {
	if m.done.Swap(true) {
		return
	}
	m.tx.release(err)
}

// tx counts the live messages derived from one source message.
type tx struct {
	refs atomic.Int64
	err  atomic.Pointer[error]
	ack  AckFunc
	// src counts the outcome at the source node; traced ends the trace.
	// Both are set before the message is first sent.
	src    *counters
	traced func(error)
}

func (t *tx) release(err error) {
	if err != nil {
		e := err // escapes only here, not on every release
		t.err.CompareAndSwap(nil, &e)
	}
	if t.refs.Add(-1) != 0 {
		return
	}
	var final error
	if p := t.err.Load(); p != nil {
		final = *p
	}
	if t.src != nil {
		if final == nil {
			t.src.acked.Add(1)
		} else {
			t.src.nacked.Add(1)
			t.src.nackReasons.add(nackReason(final))
		}
	}
	if t.traced != nil {
		t.traced(final)
	}
	if t.ack != nil {
		t.ack(final)
	}
}

// failures records a message's failed attempts for its dead-letter envelope.
type failures struct {
	attempts    int
	first, last time.Time
}

// RecordAttempt counts a failed delivery attempt at t; the dead-letter
// envelope reports the count and the first and last failure times.
func (m *Message) RecordAttempt(t time.Time) {
	if m.failures.attempts == 0 {
		m.failures.first = t
	}
	m.failures.attempts++
	m.failures.last = t
}

// nackReason is the reason a source message was nacked for: its error's
// dead-letter reason, or "abandoned" at the hard stop.
func nackReason(err error) string {
	if errors.Is(err, ErrAbandoned) {
		return "abandoned"
	}
	return Reason(err)
}
