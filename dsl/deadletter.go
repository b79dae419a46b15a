package dsl

import "gopkg.in/yaml.v3"

// deadLetterMode is the value of every mode field (on_limit, on_open,
// on_late, on_missing, ...) that sends messages to the dead-letter sink.
const deadLetterMode = "dead_letter"

// checkDeadLetterModes reports every field of a node set to dead_letter
// when the file has no dead_letter sink: without one, those messages would
// be nacked at run time (and lost for sources that cannot redeliver). It
// reads the YAML, not the kinds' specs, so every kind's mode fields are
// covered, including kinds added later.
func (p *parser) checkDeadLetterModes() {
	if p.c.DeadLetter != nil {
		return
	}
	for _, n := range p.c.Nodes {
		report := func(k, v *yaml.Node) {
			p.errorf(v, "%s: dead_letter needs a dead_letter sink; add a top-level `dead_letter:` (e.g. `dead_letter: {file: {path: dead.ndjson}}`) or choose another %s", k.Value, k.Value)
		}
		deadLetterFields(n.Body, report)
		for _, c := range n.Common {
			deadLetterFields(c, report)
		}
	}
}

// deadLetterFields calls f for every mapping entry under n whose value is
// the scalar dead_letter.
func deadLetterFields(n *yaml.Node, f func(k, v *yaml.Node)) {
	if n == nil {
		return
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if v.Kind == yaml.ScalarNode && v.Value == deadLetterMode {
				f(k, v)
				continue
			}
			deadLetterFields(v, f)
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			deadLetterFields(c, f)
		}
	}
}
