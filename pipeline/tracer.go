package pipeline

import "context"

// Tracer observes each message's path through the graph. Package tracing
// implements it with OpenTelemetry, keeping the SDK out of this package.
// A nil [Pipeline.Tracer] costs nothing.
//
// The runtime calls a Tracer from the goroutine that owns the message at
// that moment, so an implementation may change m's context without locking;
// it must be safe for concurrent use across messages. Calls for one message
// come in this order: Source once (source messages only), then for every
// node the message visits Enter before it is queued there and Leave when it
// leaves (sent on, dropped, failed, abandoned or written).
//
// The runtime calls Enter and Leave only for a message whose context was
// set (see [Message.SetContext]), and Leave also for a batch: a message
// the Tracer chose not to trace in Source costs that one call.
type Tracer interface {
	// Source is called when source node n hands on a new message m, before
	// it is queued anywhere. It may set m's context (e.g. a root span) and
	// returns a func the runtime calls once, with the final ack error, when
	// m and every message derived from it are resolved; nil means none.
	Source(n *NodeInfo, m *Message) (done func(err error))
	// Enter is called just before m is queued for node n.
	Enter(n *NodeInfo, m *Message)
	// Leave is called when m leaves node n: with nil when it is sent on or
	// written, a *DropError when dropped, or the failure. A batch built by a
	// stage (see [NewBatch]) is first seen in Leave of that stage.
	Leave(n *NodeInfo, m *Message, err error)
	// TraceID returns the hex trace ID carried by ctx, or "" if none. It
	// fills [DeadLetter.TraceID].
	TraceID(ctx context.Context) string
}

// NodeInfo identifies a node to a [Tracer]. The runtime owns it; a Tracer
// must not change it.
type NodeInfo struct {
	Pipeline string
	Name     string
	Kind     string
	Role     Role
}

// traced reports whether the tracer wants Enter and Leave for m.
func (p *Pipeline) traced(m *Message) bool {
	return p.Tracer != nil && (m.ctx != nil || m.batch != nil)
}

func (p *Pipeline) enter(n *node, m *Message) {
	if p.Tracer != nil && m.ctx != nil {
		p.Tracer.Enter(&n.info, m)
	}
}

func (p *Pipeline) leave(n *node, m *Message, err error) {
	if p.traced(m) {
		p.Tracer.Leave(&n.info, m, err)
	}
}

func (p *Pipeline) traceID(m *Message) string {
	if p.Tracer == nil || m.ctx == nil {
		return ""
	}
	return p.Tracer.TraceID(m.ctx)
}
