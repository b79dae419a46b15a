package pipeline

import (
	"context"
	"time"
)

// Source produces messages.
//
// Read sends messages to out until the source is exhausted (return nil),
// ctx is cancelled (a soft stop: return nil promptly without reading more),
// or it fails (return the error). Connections are opened in Read, never in a
// constructor. A source acks its broker from the [AckFunc] given to
// [NewMessage]; acks may arrive after Read returned, until Run returns.
type Source interface {
	Read(ctx context.Context, out Outlet) error
}

// Processor handles one message at a time; the runtime runs it on the
// stage's worker goroutines, so Process must be safe for concurrent use when
// workers > 1.
//
// Process returns
//   - (m2, nil): m2 (usually m itself, changed) goes downstream and carries
//     m's acknowledgement;
//   - (nil, nil) or (nil, *DropError): m is dropped on purpose, acked and counted;
//   - (_, err): m failed and goes to the dead-letter path with err.
//
// ctx is cancelled only at the hard stop.
type Processor interface {
	Process(ctx context.Context, m *Message) (*Message, error)
}

// Stage is a node that owns its loop, for behaviour a [Processor] cannot
// express (batching, timers). Run reads in until it is closed, hands every
// message on to out (Send, Fail or Drop) and returns; it must not close
// anything. ctx is cancelled only at the hard stop: Run then nacks what it
// holds and returns promptly.
type Stage interface {
	Run(ctx context.Context, in <-chan *Message, out Outlet) error
}

// softKey holds, in a stage's ctx, the pipeline's soft-stop context.
type softKey struct{}

// Stopping reports whether the soft stop (SIGTERM, a cancelled Run) has
// begun, given the ctx of [Stage.Run]. A stage whose input closed uses it to
// tell a soft stop from the end of its sources: a window stage emits open
// windows as final results at the end of input, as partial ones at a stop.
func Stopping(ctx context.Context) bool {
	soft, ok := ctx.Value(softKey{}).(context.Context)
	return ok && soft.Err() != nil
}

// AckDeadliner is implemented by sources whose broker redelivers a message
// not acked within a deadline, such as JetStream's ack_wait.
type AckDeadliner interface {
	AckDeadline() time.Duration
}

// Holder is implemented by stages that hold messages unacked until later
// messages or the clock release them, such as window. HoldBound returns the
// longest a message may be held on the clock, and false when nothing on
// the clock bounds it (windows that close only as later messages arrive).
// The DSL refuses a holder downstream of an [AckDeadliner] whose deadline
// is not above the bound.
type Holder interface {
	HoldBound() (time.Duration, bool)
}

// Sink delivers messages. The runtime acks a message when Write returns nil
// and sends it to the dead-letter path otherwise. m may be a batch
// ([Message.Batch]); a sink then writes all members in one call if it can.
// Write must be safe for concurrent use when the sink has workers > 1.
type Sink interface {
	Write(ctx context.Context, m *Message) error
}

// Closer is implemented by sources, stages and sinks that hold resources.
// The runtime calls Close once, after the node's last message.
type Closer interface {
	Close(ctx context.Context) error
}

// Checker is implemented by stages and sinks that can check their target
// before anything is read: a file sink's directory, a table and its
// columns. Run calls Check on every such node before it starts any source;
// an error fails the run at once, with nothing read. Check answers only
// what a later write would fail on for certain; a target it cannot reach
// right now is no reason to fail (retries and the dead-letter path handle
// that).
type Checker interface {
	Check(ctx context.Context) error
}

// Outlet is where a node hands its messages on. Implementations are safe for
// concurrent use.
type Outlet interface {
	// Send passes m downstream, blocking while downstream buffers are full
	// (backpressure). Ownership of m passes to the outlet in every case: on
	// error (the stop came first) m has been nacked.
	Send(ctx context.Context, m *Message) error
	// SendTo is Send on a named output port (see [Router]).
	SendTo(ctx context.Context, port string, m *Message) error
	// Fail sends m to the dead-letter path with err; without a dead-letter
	// sink, m is counted, logged and nacked.
	Fail(ctx context.Context, m *Message, err error)
	// Drop acks m as intentionally discarded and counts it.
	Drop(m *Message, reason string)
}

// Router is implemented by stages with named output ports, such as route.
// The graph rejects edges from ports a router does not declare.
type Router interface {
	Ports() []string
}
