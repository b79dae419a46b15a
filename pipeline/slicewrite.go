package pipeline

import (
	"context"
	"errors"
	"time"
)

// SliceWriter is implemented by sinks that deliver several messages in one
// call more cheaply than one at a time (one write system call for many
// lines). The runtime calls WriteSlice with the messages it has in hand for
// the sink (one input chain, at most 64, never waiting for more), in
// order; single messages and batches ([Message.Batch]) still go to Write.
//
// WriteSlice returns nil when every message was delivered, a [BatchError]
// with one entry per message (nil for each delivered one) when it
// delivered some, and any other error when it delivered none. The runtime
// then acks, dead-letters or nacks each message as it would after Write.
// ms is the runtime's: WriteSlice must not keep it. It must be safe for
// concurrent use when the sink has workers > 1. Latency statistics count a
// WriteSlice as one call.
type SliceWriter interface {
	WriteSlice(ctx context.Context, ms []*Message) error
}

// writeSlices returns the chain handler of a sink that is a SliceWriter.
func (p *Pipeline) writeSlices(hard context.Context, n *node, sw SliceWriter) func(*outlet, *Message) {
	return func(out *outlet, head *Message) {
		ms := out.scratch[:0] // the worker's own
		batches := false
		for m := head; m != nil; {
			next := unlink(m)
			if stopped(hard) {
				out.abandon(m)
			} else {
				batches = batches || m.batch != nil
				ms = append(ms, m)
			}
			m = next
		}
		if batches || len(ms) < 2 {
			for _, m := range ms {
				p.write(hard, n, out, m)
			}
		} else {
			p.writeSlice(hard, n, out, sw, ms)
		}
		clear(ms)
		out.scratch = ms
	}
}

// writeSlice writes ms (no batches among them) in one WriteSlice and
// resolves each message as write does.
func (p *Pipeline) writeSlice(ctx context.Context, n *node, out *outlet, sw SliceWriter, ms []*Message) {
	var err error
	if w := n.stats.latency.sample(); w == 0 {
		err = sw.WriteSlice(ctx, ms)
	} else {
		start := time.Now()
		err = sw.WriteSlice(ctx, ms)
		n.stats.latency.record(time.Since(start), w)
	}
	var each []error
	var be *BatchError
	if err != nil && errors.As(err, &be) && len(be.Errs) == len(ms) {
		each = be.Errs
	}
	for i, m := range ms {
		e := err
		if each != nil {
			e = each[i]
		}
		p.written(ctx, n, out, m, e)
	}
}
