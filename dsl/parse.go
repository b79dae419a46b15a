package dsl

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/pipe-dsl/pipe/pipeline"
)

var topKeys = []string{
	"name", "version", "source", "sources", "stages", "sink", "sinks",
	"dead_letter", "buffer", "drain_timeout", "tracing", "metrics", "state",
}

// Keys a component mapping may hold besides its kind.
var (
	runtimeKeys = []string{"workers", "ordered", "buffer"}
	policyKeys  = []string{"retry", "breaker", "timeout"}
)

// ParseFile reads and parses a pipeline file.
func ParseFile(file string, opts *Options) (*Config, error) {
	src, err := readLimited(file)
	if err != nil {
		return nil, err
	}
	return Parse(file, src, opts)
}

// readLimited reads file, or, when it is larger than MaxDocumentSize, only
// enough of it for Parse to reject it: a huge file costs no more than the
// limit.
func readLimited(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, int64(MaxDocumentSize)+1))
	if err != nil {
		return nil, err
	}
	if len(src) > MaxDocumentSize {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			return nil, Errors{{Pos: Pos{File: file, Line: 1, Col: 1},
				Msg: fmt.Sprintf("pipeline file is too large: %d bytes (the limit is %d)", fi.Size(), MaxDocumentSize)}}
		}
	}
	return src, nil
}

// Parse checks the shape of a pipeline document: top-level keys, the linear
// or graph form, component kinds, node names and edges. Every problem found
// is returned at once as [Errors]. With errors it may also return the part
// of the config it understood, which [Load] decodes to report more problems;
// Compile refuses such a config.
func Parse(file string, src []byte, opts *Options) (*Config, error) {
	root, errs := LoadYAML(file, src)
	if len(errs) > 0 {
		return nil, errs
	}
	in, ierrs := interpolate(file, root, opts.lookup())
	errs = append(errs, ierrs...)
	p := &parser{
		c: &Config{
			File:    file,
			Src:     src,
			Root:    root,
			Extra:   map[string]*yaml.Node{},
			fromEnv: in.fromEnv,
			envText: in.envText,
			envRefs: in.refs,
			lookup:  opts.lookup(),
		},
		opts: opts,
		errs: errs,
	}
	p.parse()
	if len(p.errs) > 0 {
		if len(ierrs) == 0 {
			p.c.partial = true
			return p.c, p.errs
		}
		return nil, p.errs
	}
	return p.c, nil
}

type parser struct {
	c    *Config
	opts *Options
	errs Errors
	// unknownTop is set once an unknown top-level key was reported: a
	// missing source or sink is then most likely that key misspelt.
	unknownTop bool
}

func (p *parser) pos(n *yaml.Node) Pos { return NodePos(p.c.File, n) }

func (p *parser) errorf(n *yaml.Node, format string, args ...any) {
	p.errs.Add(p.pos(n), format, args...)
}

// show quotes a scalar for an error message, unless it came from the
// environment: those values may be secrets.
func (p *parser) show(n *yaml.Node) string { return showValue(p.c.fromEnv, n) }

func showValue(fromEnv map[*yaml.Node]bool, n *yaml.Node) string {
	if fromEnv[n] {
		return "(value from environment)"
	}
	if n.Kind != yaml.ScalarNode {
		return kindName(n)
	}
	v := n.Value
	if len(v) > 60 {
		v = v[:57] + "..."
	}
	return strconv.Quote(v)
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	switch n.Tag {
	case "!!null":
		return "null"
	case "!!bool":
		return "a boolean"
	case "!!int", "!!float":
		return "a number"
	}
	return "a string"
}

// pairs iterates a mapping's key/value nodes, reporting duplicate keys.
func (p *parser) pairs(m *yaml.Node, f func(k, v *yaml.Node)) {
	seen := map[string]bool{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if seen[k.Value] {
			p.errorf(k, "duplicate key %q", k.Value)
			continue
		}
		seen[k.Value] = true
		f(k, v)
	}
}

func (p *parser) unknownKey(k *yaml.Node, what string, candidates []string) {
	if s := Suggest(k.Value, candidates); s != "" {
		p.errorf(k, "unknown %s %q; did you mean %q?", what, k.Value, s)
		return
	}
	p.errorf(k, "unknown %s %q (expected one of: %s)", what, k.Value, strings.Join(candidates, ", "))
}

func (p *parser) parse() {
	root := p.c.Root
	if root.Kind != yaml.MappingNode {
		p.errorf(root, "a pipeline must be a mapping with source, stages and sink, not %s", kindName(root))
		return
	}
	top := map[string]*yaml.Node{}
	topKey := map[string]*yaml.Node{}
	p.pairs(root, func(k, v *yaml.Node) {
		if !slices.Contains(topKeys, k.Value) {
			p.unknownTop = true
			p.unknownKey(k, "top-level key", topKeys)
			return
		}
		top[k.Value], topKey[k.Value] = v, k
	})
	p.c.Name = strings.TrimSuffix(filepath.Base(p.c.File), filepath.Ext(p.c.File))
	if v := top["name"]; v != nil {
		if v.Kind != yaml.ScalarNode || v.Value == "" {
			p.errorf(v, "name must be a non-empty string")
		} else {
			p.c.Name = v.Value
		}
	}
	if v := top["version"]; v != nil && v.Value != "1" {
		p.errorf(v, "unsupported version %s (this pipe reads version 1)", p.show(v))
	}
	if v := top["buffer"]; v != nil {
		p.c.Buffer = p.intIn(v, "buffer", 1, 1<<20)
	}
	if v := top["drain_timeout"]; v != nil {
		d, err := ParseDuration(v.Value)
		if v.Kind != yaml.ScalarNode || err != nil {
			p.errorf(v, "drain_timeout: %v", durationErr(err, v))
		}
		p.c.DrainTimeout = d
	}
	for _, k := range []string{"tracing", "metrics"} {
		if v := top[k]; v != nil {
			p.c.Extra[k] = v
		}
	}
	p.parseObserve(top)
	if v := top["state"]; v != nil {
		p.c.State = p.parseState(v)
	}

	graph := top["sources"] != nil || top["sinks"] != nil || top["stages"] != nil && top["stages"].Kind == yaml.MappingNode
	switch {
	case p.opts.isFlow():
		p.c.Form = "flow"
		for _, k := range []string{"source", "sources", "sink", "sinks"} {
			if top[k] != nil {
				p.errorf(topKey[k], "a flow has no %s: go-streams feeds and drains it; list only stages", k)
			}
		}
		if st := top["stages"]; st != nil && st.Kind == yaml.MappingNode {
			p.errorf(st, "a flow's stages must be a list")
		}
		p.parseLinear(root, top)
	case graph:
		p.c.Form = "graph"
		for _, k := range []string{"source", "sink"} {
			if top[k] != nil {
				p.errorf(topKey[k], "%q belongs to the linear form; in the graph form (sources/stages/sinks mappings) use %q", k, k+"s")
			}
		}
		p.parseGraph(top, topKey)
	default:
		p.c.Form = "linear"
		p.parseLinear(root, top)
	}
	if v := top["dead_letter"]; v != nil {
		n := p.component(v, pipeline.RoleSink, false)
		if n != nil {
			n.Name = "dead_letter"
			p.c.DeadLetter = n
		}
	}
	p.checkDeadLetterModes()
}

func durationErr(err error, v *yaml.Node) string {
	if err == nil {
		return fmt.Sprintf("expected a duration such as 250ms, got %s", kindName(v))
	}
	return err.Error()
}

func (p *parser) intIn(v *yaml.Node, what string, lo, hi int64) int {
	n, err := strconv.ParseInt(v.Value, 0, 64)
	if v.Kind != yaml.ScalarNode || v.Tag != "!!int" || err != nil {
		p.errorf(v, "%s: expected an integer, got %s", what, p.show(v))
		return 0
	}
	if n < lo || n > hi {
		p.errorf(v, "%s: %d is out of range [%d, %d]", what, n, lo, hi)
		return 0
	}
	return int(n)
}

func (p *parser) parseLinear(root *yaml.Node, top map[string]*yaml.Node) {
	src, sink := top["source"], top["sink"]
	var chain []*Node
	if p.opts.isFlow() {
		chain = append(chain, &Node{Name: "source", Role: pipeline.RoleSource, Kind: flowKind, Pos: p.pos(root)})
	} else {
		if src == nil && !p.unknownTop {
			p.errorf(root, "missing source (or sources, for the graph form)")
		}
		if sink == nil && !p.unknownTop {
			p.errorf(root, "missing sink (or sinks, for the graph form)")
		}
	}
	if src != nil {
		if n := p.component(src, pipeline.RoleSource, false); n != nil {
			n.Name = "source"
			chain = append(chain, n)
		}
	}
	if st := top["stages"]; st != nil && st.Tag != "!!null" {
		if st.Kind != yaml.SequenceNode {
			p.errorf(st, "stages must be a list (linear form) or a mapping of named stages (graph form), not %s", kindName(st))
		} else {
			for _, item := range st.Content {
				if n := p.component(item, pipeline.RoleStage, false); n != nil {
					chain = append(chain, n)
				}
			}
		}
	}
	if sink != nil {
		if n := p.component(sink, pipeline.RoleSink, false); n != nil {
			if n.Name == "" {
				n.Name = "sink"
			}
			chain = append(chain, n)
		}
	}
	if p.opts.isFlow() {
		chain = append(chain, &Node{Name: "sink", Role: pipeline.RoleSink, Kind: flowKind, Pos: p.pos(root)})
	}
	used := map[string]*Node{}
	for i, n := range chain {
		if n.Name == "" {
			n.Name = n.Kind
			for j := 2; used[n.Name] != nil; j++ {
				n.Name = fmt.Sprintf("%s_%d", n.Kind, j)
			}
		} else if prev := used[n.Name]; prev != nil {
			p.errs.Add(n.Pos, "duplicate node name %q (first declared at %s)", n.Name, prev.Pos)
		}
		used[n.Name] = n
		if i > 0 {
			n.Inputs = []Input{{Node: chain[i-1].Name, Pos: n.Pos}}
		}
	}
	p.c.Nodes = chain
}

func (p *parser) parseGraph(top, topKey map[string]*yaml.Node) {
	sections := []struct {
		key  string
		role pipeline.Role
	}{{"sources", pipeline.RoleSource}, {"stages", pipeline.RoleStage}, {"sinks", pipeline.RoleSink}}
	byName := map[string]*Node{}
	for _, s := range sections {
		v := top[s.key]
		if v == nil {
			if s.key != "stages" && !p.unknownTop {
				p.errorf(p.c.Root, "missing %s", s.key)
			}
			continue
		}
		if v.Kind != yaml.MappingNode {
			p.errorf(v, "%s must be a mapping of node names to components, not %s", s.key, kindName(v))
			continue
		}
		p.pairs(v, func(k, item *yaml.Node) {
			if !validName(k.Value) {
				p.errorf(k, "node name %q must be letters, digits, '_' or '-'", k.Value)
			}
			n := p.component(item, s.role, true)
			if n == nil {
				return
			}
			n.Name, n.Pos = k.Value, p.pos(k)
			if prev := byName[n.Name]; prev != nil {
				p.errs.Add(n.Pos, "duplicate node name %q (first declared at %s)", n.Name, prev.Pos)
				return
			}
			byName[n.Name] = n
			p.c.Nodes = append(p.c.Nodes, n)
		})
	}
	p.checkEdges(byName)
}

func validName(s string) bool {
	if s == "" || s == "dead_letter" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// checkEdges reports dangling inputs, inputs on sources, missing inputs,
// cycles and nodes no source reaches, each at its position.
func (p *parser) checkEdges(byName map[string]*Node) {
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	slices.Sort(names)
	consumers := map[string][]*Node{}
	for _, n := range p.c.Nodes {
		if n.Role != pipeline.RoleSource && len(n.Inputs) == 0 {
			p.errs.Add(n.Pos, "%s %q has no inputs (add inputs: [NODE])", n.Role, n.Name)
		}
		for _, in := range n.Inputs {
			up := byName[in.Node]
			switch {
			case up == nil:
				if s := Suggest(in.Node, names); s != "" {
					p.errs.Add(in.Pos, "input %q of %q is not a node; did you mean %q?", in.Node, n.Name, s)
				} else {
					p.errs.Add(in.Pos, "input %q of %q is not a node", in.Node, n.Name)
				}
			case up.Role == pipeline.RoleSink:
				p.errs.Add(in.Pos, "input %q of %q is a sink; sinks have no output", in.Node, n.Name)
			case up == n:
				p.errs.Add(in.Pos, "%q reads its own output (cycle)", n.Name)
			default:
				consumers[in.Node] = append(consumers[in.Node], n)
			}
		}
	}
	// Cycles: depth-first search over resolved edges.
	state := map[*Node]int{}
	var stack []*Node
	var visit func(n *Node)
	visit = func(n *Node) {
		state[n] = 1
		stack = append(stack, n)
		for _, c := range consumers[n.Name] {
			switch state[c] {
			case 0:
				visit(c)
			case 1:
				if c == n {
					continue
				}
				i := slices.Index(stack, c)
				var path []string
				for _, s := range stack[i:] {
					path = append(path, s.Name)
				}
				p.errs.Add(c.Pos, "cycle: %s -> %s", strings.Join(path, " -> "), c.Name)
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = 2
	}
	for _, n := range p.c.Nodes {
		if state[n] == 0 {
			visit(n)
		}
	}
	reached := map[*Node]bool{}
	var walk func(n *Node)
	walk = func(n *Node) {
		if reached[n] {
			return
		}
		reached[n] = true
		for _, c := range consumers[n.Name] {
			walk(c)
		}
	}
	for _, n := range p.c.Nodes {
		if n.Role == pipeline.RoleSource {
			walk(n)
			if len(consumers[n.Name]) == 0 && !p.unknownTop {
				p.errs.Add(n.Pos, "source %q feeds nothing (no node lists it in inputs)", n.Name)
			}
		}
	}
	for _, n := range p.c.Nodes {
		if !reached[n] && len(n.Inputs) > 0 {
			p.errs.Add(n.Pos, "%s %q is unreachable from any source", n.Role, n.Name)
		}
		if n.Role == pipeline.RoleStage && reached[n] && len(consumers[n.Name]) == 0 && !p.unknownTop {
			p.errs.Add(n.Pos, "stage %q feeds nothing (no node lists it in inputs)", n.Name)
		}
	}
}

// component parses a component mapping such as `{filter: EXPR, workers: 2}`
// or the shorthand `{filter: EXPR}`.
func (p *parser) component(v *yaml.Node, role pipeline.Role, graph bool) *Node {
	reg := p.opts.registry()
	kinds := reg.Names(role)
	if v.Kind != yaml.MappingNode {
		p.errorf(v, "a %s is a mapping whose key is its kind (one of: %s), not %s", role, strings.Join(kinds, ", "), kindName(v))
		return nil
	}
	n := &Node{Role: role, Pos: p.pos(v), Common: map[string]*yaml.Node{}}
	allowed := slices.Clone(runtimeKeys)
	if graph {
		allowed = append(allowed, "inputs")
	} else {
		allowed = append(allowed, "name")
	}
	if role != pipeline.RoleSource {
		allowed = append(allowed, policyKeys...)
	}
	ok := true
	p.pairs(v, func(k, val *yaml.Node) {
		if _, isKind := reg.Lookup(role, k.Value); isKind {
			if n.Kind != "" {
				p.errorf(k, "a %s has one kind, but this one has %q and %q", role, n.Kind, k.Value)
				ok = false
				return
			}
			n.Kind, n.KindPos, n.Body = k.Value, p.pos(k), val
			return
		}
		switch k.Value {
		case "name":
			if !graph && role != pipeline.RoleSource {
				if val.Kind != yaml.ScalarNode || !validName(val.Value) {
					p.errorf(val, "name must be letters, digits, '_' or '-', got %s", p.show(val))
				}
				n.Name = val.Value
				return
			}
		case "inputs":
			if graph && role != pipeline.RoleSource {
				n.Inputs = p.inputs(val)
				return
			}
			if graph {
				p.errorf(k, "sources have no inputs")
				return
			}
		case "workers":
			if role != pipeline.RoleSource {
				n.Workers = p.intIn(val, "workers", 1, 1024)
				return
			}
		case "buffer":
			if role != pipeline.RoleSource {
				n.Buffer = p.intIn(val, "buffer", 1, 1<<20)
				return
			}
		case "ordered":
			if role != pipeline.RoleSource {
				if val.Tag != "!!bool" {
					p.errorf(val, "ordered: expected true or false, got %s", p.show(val))
				}
				n.Ordered = val.Value == "true"
				return
			}
		}
		if slices.Contains(policyKeys, k.Value) && role != pipeline.RoleSource {
			n.Common[k.Value] = val
			return
		}
		ok = false
		p.unknownKey(k, fmt.Sprintf("%s kind or key", role), append(kinds, allowed...))
	})
	if n.Kind == "" {
		if ok {
			p.errorf(v, "missing %s kind (one of: %s)", role, strings.Join(kinds, ", "))
		}
		return nil
	}
	return n
}

func (p *parser) inputs(v *yaml.Node) []Input {
	items := []*yaml.Node{v}
	if v.Kind == yaml.SequenceNode {
		items = v.Content
	}
	var out []Input
	for _, it := range items {
		if it.Kind != yaml.ScalarNode || it.Value == "" {
			p.errorf(it, "inputs: expected a node name, got %s", p.show(it))
			continue
		}
		node, port, _ := strings.Cut(it.Value, ".")
		out = append(out, Input{Node: node, Port: port, Pos: p.pos(it)})
	}
	return out
}
