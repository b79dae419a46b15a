// Package inflight ends a broker source's connection at the right time: after
// Read has returned and every message it produced has been acked or nacked,
// since acks may arrive after Read returns (see pipeline.Source).
package inflight

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Tracker counts a source's unresolved messages plus one for the reader
// itself, and runs its close function once when the count reaches zero or
// the hard stop comes first. A Tracker is safe for concurrent use.
type Tracker struct {
	n     atomic.Int64
	once  sync.Once
	close func()
}

// New returns a Tracker held by the reader; close runs once, in the
// goroutine that releases the last reference.
func New(close func()) *Tracker {
	t := &Tracker{close: close}
	t.n.Store(1)
	return t
}

// Add counts a message produced. Call it before handing the message on.
func (t *Tracker) Add() { t.n.Add(1) }

// Done releases a message once resolved, or the reader's own reference when
// Read returns.
func (t *Tracker) Done() {
	if t.n.Add(-1) == 0 {
		t.Close()
	}
}

// Len returns the number of references held: unresolved messages, plus one
// while the reader holds its own.
func (t *Tracker) Len() int64 { return t.n.Load() }

// Close runs the close function now if it has not run. Later acks find the
// connection closed and fail; the broker redelivers those messages.
func (t *Tracker) Close() { t.once.Do(t.close) }

// CloseAfter closes the tracker grace after ctx ends, for a source's
// Close(hard): the runtime cancels the hard context at the hard stop (then
// nacks what it abandoned, which the connection should still carry) and
// when Run returns, when every message is resolved. grace bounds how long a
// message that is never resolved keeps the connection open.
func (t *Tracker) CloseAfter(ctx context.Context, grace time.Duration) {
	context.AfterFunc(ctx, func() { time.AfterFunc(grace, t.Close) })
}
