package dsl

import (
	"fmt"
	"log/slog"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/pipeline"
)

// CompileOptions are the run-time dependencies handed to constructors.
type CompileOptions struct {
	Options
	// Clock drives timing stages; nil means pipeline.SystemClock.
	Clock pipeline.Clock
	// Logger receives run-time logs; nil means slog.Default().
	Logger *slog.Logger

	// Replace, when set, may supply the component for a node in place of
	// the one its kind builds (the node's config is still decoded and
	// checked); its policies still wrap the replacement. pipe test uses it
	// to swap sources and sinks for recorders.
	Replace func(n *Node) (any, bool)
	// Adjust, when set, is called with each node's built component before
	// Replace and before policies wrap it; an error is reported at the
	// node. pipe test uses it to stub a lookup stage's store.
	Adjust func(n *Node, v any) error

	flowEnds map[Role]any // the source and sink of a flow
}

// Compiled is a compiled pipeline file, ready to Run.
type Compiled struct {
	*pipeline.Pipeline
	Config *Config
}

// Compile decodes every node's config, compiles its expressions and builds
// the pipeline. It does no I/O. All problems are returned at once as Errors.
func Compile(c *Config, opts *CompileOptions) (*Compiled, error) {
	if opts == nil {
		opts = &CompileOptions{}
	}
	clock := opts.Clock
	if clock == nil {
		clock = pipeline.SystemClock
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	var errs Errors
	if c.partial {
		errs.Add(NodePos(c.File, c.Root), "config has parse errors")
		return nil, errs
	}
	d := &decoder{c: c, errs: &errs}
	reg := opts.registry()
	p := pipeline.New(c.Name)
	p.Logger, p.Clock, p.DrainTimeout = logger, clock, c.DrainTimeout

	build := func(n *Node) any {
		if n.Kind == flowKind {
			return opts.flowEnds[n.Role]
		}
		k, ok := reg.Lookup(n.Role, n.Kind)
		if !ok {
			errs.Add(n.KindPos, "unknown %s kind %q", n.Role, n.Kind)
			return nil
		}
		before := len(errs)
		cfg := k.NewConfig()
		d.decode(cfg, k.Fields, k.Shorthand, n.Body, n.Kind)
		if len(errs) > before {
			return nil
		}
		v, err := k.Build(cfg, component.Env{Pipeline: c.Name, Node: n.Name, Clock: clock, Logger: logger, EnvText: c.envTextUnder(n.Body), State: c.State})
		if err != nil {
			d.buildErrors(n, err)
			return nil
		}
		if opts.Adjust != nil {
			if err := opts.Adjust(n, v); err != nil {
				errs.Add(n.KindPos, "%s: %v", n.Kind, err)
				return nil
			}
		}
		if opts.Replace != nil {
			if r, ok := opts.Replace(n); ok {
				return r
			}
		}
		return v
	}
	nodeOpts := func(n *Node) pipeline.NodeOptions {
		o := pipeline.NodeOptions{Buffer: c.Buffer, Workers: n.Workers, Ordered: n.Ordered}
		if n.Buffer > 0 {
			o.Buffer = n.Buffer
		}
		return o
	}
	built := map[*Node]any{}
	for _, n := range c.Nodes {
		v := build(n)
		if v == nil {
			continue
		}
		built[n] = v
		v = d.policies(n, v, component.Env{Pipeline: c.Name, Node: n.Name, Clock: clock, Logger: logger, State: c.State})
		if v == nil {
			continue
		}
		var err error
		switch n.Role {
		case pipeline.RoleSource:
			err = p.AddSource(n.Name, n.Kind, v.(pipeline.Source))
		case pipeline.RoleStage:
			err = p.AddStage(n.Name, n.Kind, v, nodeOpts(n))
		case pipeline.RoleSink:
			err = p.AddSink(n.Name, n.Kind, v.(pipeline.Sink), nodeOpts(n))
		}
		if err != nil {
			errs.Add(n.Pos, "%v", err)
		}
	}
	if dl := c.DeadLetter; dl != nil {
		if v := build(dl); v != nil {
			if v = d.policies(dl, v, component.Env{Pipeline: c.Name, Node: dl.Name, Clock: clock, Logger: logger, State: c.State}); v != nil {
				if err := p.SetDeadLetter(dl.Kind, v.(pipeline.Sink), nodeOpts(dl)); err != nil {
					errs.Add(dl.Pos, "%v", err)
				}
			}
		}
	}
	checkBatches(c, reg, &errs)
	checkHolds(c, built, &errs)
	if len(errs) > 0 {
		return nil, errs
	}
	for _, n := range c.Nodes {
		for _, in := range n.Inputs {
			if err := p.Connect(in.Node, in.Port, n.Name); err != nil {
				errs.Add(in.Pos, "%v", err)
			}
		}
	}
	if len(errs) == 0 {
		if err := p.Validate(); err != nil {
			errs.Add(NodePos(c.File, c.Root), "%v", err)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return &Compiled{Pipeline: p, Config: c}, nil
}

// policies applies a node's retry, breaker and timeout keys to the built
// component v; it returns nil after reporting errors.
func (d *decoder) policies(n *Node, v any, env component.Env) any {
	if len(n.Common) == 0 {
		return v
	}
	return wrapPolicies(d, n, v, env)
}

// Load parses and compiles a pipeline file.
func Load(file string, opts *CompileOptions) (*Compiled, error) {
	if opts == nil {
		opts = &CompileOptions{}
	}
	c, err := ParseFile(file, &opts.Options)
	if err != nil {
		if errs, ok := err.(Errors); ok && c != nil {
			// Report problems inside the nodes that did parse too.
			return nil, append(errs, decodeAll(c, opts.registry())...)
		}
		return nil, err
	}
	return Compile(c, opts)
}

// String describes a compiled pipeline briefly.
func (c *Compiled) String() string {
	return fmt.Sprintf("pipeline %q (%d nodes)", c.Config.Name, len(c.Config.Nodes))
}

// decodeAll decodes the config of every node whose kind is known, for the
// errors alone.
func decodeAll(c *Config, reg *component.Registry) Errors {
	var errs Errors
	d := &decoder{c: c, errs: &errs}
	for _, n := range append(c.Nodes[:len(c.Nodes):len(c.Nodes)], c.DeadLetter) {
		if n == nil {
			continue
		}
		if k, ok := reg.Lookup(n.Role, n.Kind); ok {
			d.decode(k.NewConfig(), k.Fields, k.Shorthand, n.Body, n.Kind)
		}
	}
	return errs
}
