package dsl

import (
	"time"

	"github.com/pipe-dsl/pipe/pipeline"
)

// checkHolds reports every stage that holds messages unacked
// (pipeline.Holder, such as window) longer than an upstream source's broker
// waits before redelivering them (pipeline.AckDeadliner, such as
// nats_jetstream's ack_wait): the broker would redeliver messages the
// stage still holds, and they would be counted twice. Durable state
// (issue 19) lifts this, since acks then follow checkpoints.
func checkHolds(c *Config, built map[*Node]any, errs *Errors) {
	byName := map[string]*Node{}
	for _, n := range c.Nodes {
		byName[n.Name] = n
	}
	for _, n := range c.Nodes {
		h, ok := built[n].(pipeline.Holder)
		if !ok {
			continue
		}
		bound, bounded := h.HoldBound()
		seen := map[*Node]bool{}
		var walk func(m *Node)
		walk = func(m *Node) {
			if seen[m] {
				return
			}
			seen[m] = true
			if a, ok := built[m].(pipeline.AckDeadliner); ok && m.Role == pipeline.RoleSource {
				checkHold(n, bound, bounded, m, a.AckDeadline(), errs)
			}
			for _, in := range m.Inputs {
				if up := byName[in.Node]; up != nil {
					walk(up)
				}
			}
		}
		walk(n)
	}
}

func checkHold(n *Node, bound time.Duration, bounded bool, src *Node, deadline time.Duration, errs *Errors) {
	switch {
	case deadline <= 0:
	case !bounded:
		errs.Add(n.KindPos, "%s %q holds each message until its windows close, which nothing on the clock bounds, but source %q (%s) redelivers a message not acked within %s (ack_wait): "+
			"set idle_timeout (and for sessions use tumbling or sliding windows), or durable state; see docs/windows.md",
			n.Kind, n.Name, src.Name, src.Kind, deadline)
	case bound >= deadline:
		errs.Add(n.KindPos, "%s %q may hold a message for %s (window length + max_out_of_order + allowed_lateness + idle_timeout), but source %q (%s) redelivers a message not acked within %s (ack_wait): "+
			"raise ack_wait above %s or shorten the window; see docs/windows.md",
			n.Kind, n.Name, bound, src.Name, src.Kind, deadline, bound)
	}
}
