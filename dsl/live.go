package dsl

import (
	"slices"

	"gopkg.in/yaml.v3"

	"github.com/pipe-dsl/pipe/component"
)

// GraphNode is one node of a pipeline's drawing: what [Graph] labels it
// with, split into its name, kind and settings (secrets hidden).
type GraphNode struct {
	Name, Kind string
	Role       Role
	DeadLetter bool
	// Settings are the node's settings, one "key: value" per line, as
	// [Graph] shows them: secret fields and environment values hidden.
	Settings []string
}

// GraphEdge is one edge of a pipeline's drawing; Failed marks a failure
// path to the dead-letter sink.
type GraphEdge struct {
	From, To, Port string
	Failed         bool
}

// GraphOf returns the nodes and edges [Graph] draws, for renderers of
// their own (the live page). The dead-letter sink, if any, comes last.
func GraphOf(c *Config, reg *component.Registry) ([]GraphNode, []GraphEdge) {
	if reg == nil {
		reg = component.Default
	}
	nodes := c.Nodes
	if c.DeadLetter != nil {
		nodes = append(nodes[:len(nodes):len(nodes)], c.DeadLetter)
	}
	var gn []GraphNode
	for _, n := range nodes {
		lines := label(c, reg, n)
		gn = append(gn, GraphNode{Name: n.Name, Kind: n.Kind, Role: n.Role, DeadLetter: n == c.DeadLetter, Settings: lines[1:]})
	}
	var ge []GraphEdge
	for _, n := range c.Nodes {
		for _, in := range n.Inputs {
			ge = append(ge, GraphEdge{From: in.Node, To: n.Name, Port: in.Port})
		}
	}
	if c.DeadLetter != nil {
		for _, n := range c.Nodes {
			if canFail(reg, n) {
				ge = append(ge, GraphEdge{From: n.Name, To: c.DeadLetter.Name, Failed: true})
			}
		}
	}
	return gn, ge
}

// SecretValues returns the texts that must never be shown: the values of
// fields the kinds' specs mark secret and every scalar that took text from
// the environment. Longest first, so a redactor replaces the longest
// match. Values shorter than 4 characters are left out: redacting them
// would blank ordinary text.
func (c *Config) SecretValues(reg *component.Registry) []string {
	if reg == nil {
		reg = component.Default
	}
	seen := map[string]bool{}
	add := func(v string) {
		if len(v) >= 4 {
			seen[v] = true
		}
	}
	for n, ok := range c.fromEnv {
		if ok {
			add(n.Value)
		}
	}
	var walk func(m *yaml.Node, fields []component.Field, secret bool)
	walk = func(m *yaml.Node, fields []component.Field, secret bool) {
		switch m.Kind {
		case yaml.ScalarNode:
			if secret {
				add(m.Value)
			}
		case yaml.SequenceNode:
			for _, v := range m.Content {
				walk(v, fields, secret)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(m.Content); i += 2 {
				f := fieldNamed(fields, m.Content[i].Value)
				walk(m.Content[i+1], f.Fields, secret || f.Secret)
			}
		}
	}
	nodes := c.Nodes
	if c.DeadLetter != nil {
		nodes = append(nodes[:len(nodes):len(nodes)], c.DeadLetter)
	}
	for _, n := range nodes {
		k, ok := reg.Lookup(n.Role, n.Kind)
		if !ok || n.Body == nil {
			continue
		}
		if n.Body.Kind == yaml.ScalarNode {
			walk(n.Body, nil, fieldNamed(k.Fields, k.Shorthand).Secret)
			continue
		}
		walk(n.Body, k.Fields, false)
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}
