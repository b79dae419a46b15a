package dsl

import (
	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/pipeline"
)

// checkBatches reports every stage that takes single messages (filter,
// map, route, batch itself) placed downstream of a stage that emits batches, at the
// stage's kind, naming the batching stage. Stages that pass batches on
// unchanged carry them further; every sink takes batches.
func checkBatches(c *Config, reg *component.Registry, errs *Errors) {
	byName := map[string]*Node{}
	for _, n := range c.Nodes {
		byName[n.Name] = n
	}
	batching := func(n *Node) component.Batching {
		if n.Role != pipeline.RoleStage {
			return component.BatchesPass
		}
		if k, ok := reg.Lookup(n.Role, n.Kind); ok {
			return k.Batching
		}
		return component.BatchesPass
	}
	// emitter[n] is the batching stage whose batches reach n, or nil.
	emitter := map[*Node]*Node{}
	seen := map[*Node]bool{}
	var from func(n *Node) *Node
	from = func(n *Node) *Node {
		if seen[n] {
			return emitter[n]
		}
		seen[n] = true // also ends cycles, which Parse reports
		for _, in := range n.Inputs {
			up := byName[in.Node]
			if up == nil {
				continue
			}
			if batching(up) == component.BatchesEmit {
				emitter[n] = up
				break
			}
			if e := from(up); e != nil {
				emitter[n] = e
				break
			}
		}
		return emitter[n]
	}
	for _, n := range c.Nodes {
		if b := batching(n); b != component.BatchesReject && b != component.BatchesEmit {
			continue
		}
		if e := from(n); e != nil {
			errs.Add(n.KindPos, "%s %q takes single messages, but %s %q upstream (%s) emits batches: place %s before the batch stage",
				n.Kind, n.Name, e.Kind, e.Name, e.Pos, n.Kind)
		}
	}
}
