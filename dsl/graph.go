package dsl

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/pipeline"
)

// Graph formats for [Graph].
const (
	GraphMermaid = "mermaid"
	GraphDot     = "dot"
)

// Graph draws the pipeline of c as a Mermaid flowchart or a Graphviz dot
// digraph. Each node shows its name, kind and the scalar settings it sets
// (workers, buffer, rate, size, ...), never the value of a secret field or
// of anything that came from an environment variable. Failure paths to the
// dead-letter sink are dashed, and drawn from every node that can fail a
// message: each stage and sink, and the sources whose kind fails messages
// (component.Kind.FailsMessages).
func Graph(c *Config, reg *component.Registry, format string) (string, error) {
	if reg == nil {
		reg = component.Default
	}
	nodes := c.Nodes
	if c.DeadLetter != nil {
		nodes = append(nodes[:len(nodes):len(nodes)], c.DeadLetter)
	}
	ids := map[string]string{}
	for i, n := range nodes {
		ids[n.Name] = fmt.Sprintf("n%d", i)
	}
	var b strings.Builder
	switch format {
	case GraphMermaid:
		b.WriteString("flowchart LR\n")
		for _, n := range nodes {
			open, close := "[", "]"
			switch {
			case n == c.DeadLetter:
				open, close = "[/", "/]"
			case n.Role == pipeline.RoleSource:
				open, close = "([", "])"
			case n.Role == pipeline.RoleSink:
				open, close = "[(", ")]"
			}
			fmt.Fprintf(&b, "  %s%s\"%s\"%s\n", ids[n.Name], open, mermaidLabel(label(c, reg, n)), close)
		}
		for _, n := range c.Nodes {
			for _, in := range n.Inputs {
				arrow := "-->"
				if in.Port != "" {
					arrow = "-- " + in.Port + " -->"
				}
				fmt.Fprintf(&b, "  %s %s %s\n", ids[in.Node], arrow, ids[n.Name])
			}
		}
		if c.DeadLetter != nil {
			for _, n := range c.Nodes {
				if canFail(reg, n) {
					fmt.Fprintf(&b, "  %s -. failed .-> %s\n", ids[n.Name], ids[c.DeadLetter.Name])
				}
			}
		}
	case GraphDot:
		fmt.Fprintf(&b, "digraph %q {\n  rankdir=LR;\n  node [fontname=\"Helvetica\" fontsize=11];\n  edge [fontname=\"Helvetica\" fontsize=10];\n", c.Name)
		for _, n := range nodes {
			shape := "box"
			switch {
			case n == c.DeadLetter:
				shape = "box style=dashed"
			case n.Role == pipeline.RoleSource:
				shape = "box style=rounded"
			case n.Role == pipeline.RoleSink:
				shape = "box peripheries=2"
			}
			fmt.Fprintf(&b, "  %s [shape=%s label=%s];\n", ids[n.Name], shape, dotLabel(label(c, reg, n)))
		}
		for _, n := range c.Nodes {
			for _, in := range n.Inputs {
				attr := ""
				if in.Port != "" {
					attr = fmt.Sprintf(" [label=%q]", in.Port)
				}
				fmt.Fprintf(&b, "  %s -> %s%s;\n", ids[in.Node], ids[n.Name], attr)
			}
		}
		if c.DeadLetter != nil {
			for _, n := range c.Nodes {
				if canFail(reg, n) {
					fmt.Fprintf(&b, "  %s -> %s [style=dashed color=red label=\"failed\" constraint=false];\n", ids[n.Name], ids[c.DeadLetter.Name])
				}
			}
			// Failure edges do not bend the main flow; the dead-letter
			// sink sits in the last column.
			fmt.Fprintf(&b, "  {rank=max; %s}\n", ids[c.DeadLetter.Name])
		}
		b.WriteString("}\n")
	default:
		return "", fmt.Errorf("unknown graph format %q (want %s or %s)", format, GraphMermaid, GraphDot)
	}
	return b.String(), nil
}

// canFail reports whether n can send messages to the dead-letter sink.
func canFail(reg *component.Registry, n *Node) bool {
	if n.Role != pipeline.RoleSource {
		return true
	}
	k, ok := reg.Lookup(n.Role, n.Kind)
	return ok && k.FailsMessages
}

// label is a node's name, kind and settings, one per line.
func label(c *Config, reg *component.Registry, n *Node) []string {
	lines := []string{n.Name}
	if n.Kind != n.Name {
		lines[0] += " (" + n.Kind + ")"
	}
	if n.Kind == flowKind {
		return lines
	}
	var fields []component.Field
	if k, ok := reg.Lookup(n.Role, n.Kind); ok {
		fields = k.Fields
		if k.Shorthand != "" && n.Body != nil && n.Body.Kind == yaml.ScalarNode {
			lines = append(lines, short(c, n.Body, fieldNamed(fields, k.Shorthand).Secret))
		}
	}
	// settings adds the scalar settings of mapping m, and those of its
	// nested mappings one level down (map: {set: {a: ...}}).
	var settings func(m *yaml.Node, prefix string, fields []component.Field, depth int)
	settings = func(m *yaml.Node, prefix string, fields []component.Field, depth int) {
		if m == nil || m.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(m.Content); i += 2 {
			k, v := m.Content[i], m.Content[i+1]
			f := fieldNamed(fields, k.Value)
			switch {
			case v.Kind == yaml.ScalarNode:
				lines = append(lines, prefix+k.Value+": "+short(c, v, f.Secret))
			case v.Kind == yaml.MappingNode && f.Secret:
				lines = append(lines, prefix+k.Value+": (hidden)")
			case v.Kind == yaml.MappingNode && depth > 0:
				settings(v, prefix+k.Value+".", f.Fields, depth-1)
			case v.Kind == yaml.SequenceNode && f.Secret:
				lines = append(lines, prefix+k.Value+": (hidden)")
			case v.Kind == yaml.SequenceNode && depth > 0:
				lines = append(lines, listLines(c, prefix+k.Value, v, f.Fields)...)
			}
		}
	}
	settings(n.Body, "", fields, 1)
	if n.Workers > 1 {
		lines = append(lines, fmt.Sprintf("workers: %d", n.Workers))
	}
	if n.Buffer > 0 {
		lines = append(lines, fmt.Sprintf("buffer: %d", n.Buffer))
	}
	for _, k := range policyOrder(n.Common) {
		lines = append(lines, policyLines(c, k, n.Common[k])...)
	}
	return lines
}

// policyOrder lists the policy keys of a node outermost first, as they
// wrap it: retry, breaker, timeout, then any other key by name.
func policyOrder(common map[string]*yaml.Node) []string {
	rank := func(k string) int {
		if i := slices.Index([]string{"retry", "breaker", "timeout"}, k); i >= 0 {
			return i
		}
		return 3
	}
	keys := make([]string, 0, len(common))
	for k := range common {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		return strings.Compare(a, b)
	})
	return keys
}

// policyLines shows a policy on as few lines as fit: "retry:
// max_attempts=6 base_delay=100ms", wrapped near 56 characters.
func policyLines(c *Config, key string, v *yaml.Node) []string {
	if v.Kind == yaml.ScalarNode {
		return []string{key + ": " + short(c, v, false)}
	}
	if v.Kind != yaml.MappingNode {
		return nil
	}
	lines := []string{key + ":"}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		if val.Kind != yaml.ScalarNode {
			continue
		}
		item := k.Value + "=" + short(c, val, false)
		last := &lines[len(lines)-1]
		if len(*last) > len(key)+1 && len(*last)+1+len(item) > 56 {
			lines = append(lines, "  "+item)
		} else {
			*last += " " + item
		}
	}
	return lines
}

// listLines shows a list: scalars on one line, "delete: [a, b]", and each
// object on its own, "cases: name=errors when=msg.level == …".
func listLines(c *Config, key string, seq *yaml.Node, fields []component.Field) []string {
	var lines, scalars []string
	for _, item := range seq.Content {
		switch item.Kind {
		case yaml.ScalarNode:
			scalars = append(scalars, short(c, item, false))
		case yaml.MappingNode:
			var kv []string
			for i := 0; i+1 < len(item.Content); i += 2 {
				if v := item.Content[i+1]; v.Kind == yaml.ScalarNode {
					kv = append(kv, item.Content[i].Value+"="+short(c, v, fieldNamed(fields, item.Content[i].Value).Secret))
				}
			}
			lines = append(lines, key+": "+strings.Join(kv, " "))
		}
	}
	if len(scalars) > 0 {
		lines = append([]string{key + ": [" + strings.Join(scalars, ", ") + "]"}, lines...)
	}
	return lines
}

// fieldNamed is the field of that name, or the zero Field.
func fieldNamed(fields []component.Field, name string) component.Field {
	for _, f := range fields {
		if f.Name == name {
			return f
		}
	}
	return component.Field{}
}

// short shows a scalar setting, hiding secrets and values from the
// environment, and shortening long expressions.
func short(c *Config, v *yaml.Node, secret bool) string {
	if secret || c.fromEnv[v] {
		return "(hidden)"
	}
	s := strings.Join(strings.Fields(v.Value), " ")
	if r := []rune(s); len(r) > 40 {
		s = string(r[:39]) + "…"
	}
	return s
}

var dotEscape = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", " ")

// dotLabel quotes lines as a dot label, each line left-justified.
func dotLabel(lines []string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, l := range lines {
		b.WriteString(dotEscape.Replace(l))
		b.WriteString(`\l`)
	}
	b.WriteByte('"')
	return b.String()
}

var mermaidEscape = strings.NewReplacer(`"`, "#quot;", "<", "#lt;", ">", "#gt;")

func mermaidLabel(lines []string) string {
	for i, l := range lines {
		lines[i] = mermaidEscape.Replace(l)
	}
	return strings.Join(lines, "<br/>")
}
