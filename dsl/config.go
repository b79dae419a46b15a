// Package dsl parses pipeline YAML files, validates them against the
// component registry and compiles them into runnable pipelines.
//
// The flow mirrors cel-go's compile-then-run: [Parse] reads and checks the
// document's shape, [Compile] decodes every component's config, compiles
// its CEL expressions and builds a *pipeline.Pipeline, and Run(ctx) on that
// opens connections and moves messages. Parse and Compile do no I/O beyond
// reading the file, so `pipe validate` works with no broker reachable.
package dsl

import (
	"os"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/state"
)

// Config is a parsed pipeline file: its top-level settings and its nodes,
// each still holding its raw YAML so Compile can decode it with positions.
type Config struct {
	File string
	Src  []byte
	Name string
	// Form is "linear" (source, stages list, sink) or "graph" (named nodes
	// with inputs).
	Form         string
	Buffer       int
	DrainTimeout time.Duration
	Nodes        []*Node
	DeadLetter   *Node
	// Root is the document's top-level mapping; Extra holds top-level
	// sections Parse does not own (tracing, metrics) by key.
	Root  *yaml.Node
	Extra map[string]*yaml.Node
	// Tracing and Metrics are the decoded tracing and metrics sections, nil
	// when the file has none.
	Tracing *Tracing
	Metrics *Metrics
	// State is the top-level `state:` store, nil when the file has none.
	// It does no I/O until a stage or the checkpointer opens it.
	State state.Backend

	fromEnv map[*yaml.Node]bool
	// envText holds, per scalar in fromEnv, the texts taken from the
	// environment (see interpolate).
	envText map[*yaml.Node][]string
	// envRefs holds the first ${NAME} of each scalar that had one; lookup
	// resolves env.NAME in expressions.
	envRefs map[*yaml.Node]envRef
	lookup  func(string) (string, bool)
	// partial marks a config returned with parse errors.
	partial bool
}

// Node is one source, stage or sink of the file.
type Node struct {
	Name string
	Role Role
	Kind string
	// Inputs are "node" or "node.port" references; in the linear form they
	// are filled in from the order of the file.
	Inputs []Input
	// Workers, Ordered and Buffer are the runtime options shared by all
	// stage and sink kinds.
	Workers int
	Ordered bool
	Buffer  int
	// Body is the value under the kind key; Common holds the other keys of
	// the component mapping that are not runtime options (e.g. retry).
	Body   *yaml.Node
	Common map[string]*yaml.Node
	// Pos is where the node is declared; KindPos where its kind key is.
	Pos, KindPos Pos
}

// Input is one edge into a node.
type Input struct {
	Node, Port string
	Pos        Pos
}

// Role is where a node sits: source, stage or sink.
type Role = pipeline.Role

// Options changes how a file is parsed and compiled.
type Options struct {
	// Lookup resolves ${VAR}; nil means os.LookupEnv.
	Lookup func(string) (string, bool)
	// Registry holds the kinds a file may use; nil means component.Default.
	Registry *component.Registry

	// flow compiles a stages-only file between the ends of a go-streams
	// Flow (see NewFlow).
	flow bool
}

func (o *Options) registry() *component.Registry {
	if o == nil || o.Registry == nil {
		return component.Default
	}
	return o.Registry
}

func (o *Options) lookup() func(string) (string, bool) {
	if o == nil || o.Lookup == nil {
		return os.LookupEnv
	}
	return o.Lookup
}

func (o *Options) isFlow() bool { return o != nil && o.flow }
