// Package component registers the kinds of sources, stages and sinks that
// pipelines are built from, each with a config spec that drives validation,
// `pipe kinds` and the JSON Schema.
package component

import (
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/state"
)

// Role is where a kind may appear: sources, stages or sinks.
type Role = pipeline.Role

const (
	RoleSource = pipeline.RoleSource
	RoleStage  = pipeline.RoleStage
	RoleSink   = pipeline.RoleSink
)

// Env is what a constructor may use besides its config. Constructors do no
// I/O: connections open in Read, Run or Write.
type Env struct {
	// Pipeline and Node name the pipeline and the node being built.
	Pipeline, Node string
	Clock          pipeline.Clock
	Logger         *slog.Logger
	// EnvText holds the texts the node's config took from the environment
	// (${VAR} values, not defaults), longest first. They may be secrets: a
	// kind that shows part of its config, such as a URL in an error, hides
	// every one of them.
	EnvText []string
	// State is the pipeline's top-level `state:` store, nil without one.
	// Constructors only keep it: it is opened when the pipeline runs.
	State state.Backend
}

// Kind describes one component kind.
type Kind struct {
	Name    string
	Role    Role
	Summary string
	// Shorthand names the field that a scalar fills: `- filter: EXPR`.
	Shorthand string
	// Fields is the config spec, derived from the config struct's tags.
	Fields []Field
	// Batching is how a stage kind treats batch messages.
	Batching Batching
	// FailsMessages marks a source kind that sends what it cannot read (an
	// undecodable line, a message redelivered too often) to the dead-letter
	// sink. Every stage and sink can fail messages.
	FailsMessages bool

	newConfig func() any
	build     func(cfg any, env Env) (any, error)
}

// NewConfig returns a new config value (a pointer to the kind's config
// struct) holding the defaults.
func (k *Kind) NewConfig() any { return k.newConfig() }

// Build constructs the component from a config returned by NewConfig and
// filled in by the decoder.
func (k *Kind) Build(cfg any, env Env) (any, error) { return k.build(cfg, env) }

// Option changes a Kind at registration.
type Option func(*Kind)

// WithShorthand lets a scalar value fill the named field.
func WithShorthand(field string) Option { return func(k *Kind) { k.Shorthand = field } }

// Batching is how a stage kind treats batch messages (pipeline.NewBatch).
// The DSL uses it to reject, at compile time, a stage that takes single
// messages downstream of one that emits batches.
type Batching uint8

const (
	// BatchesPass: the kind passes batches on unchanged (the default).
	BatchesPass Batching = iota
	// BatchesEmit: the kind's output messages are batches; its input
	// messages must be single ones.
	BatchesEmit
	// BatchesReject: the kind takes single messages only.
	BatchesReject
)

// WithBatching sets how a stage kind treats batches.
func WithBatching(b Batching) Option { return func(k *Kind) { k.Batching = b } }

// WithFailures marks a source kind that fails messages (Kind.FailsMessages).
func WithFailures() Option { return func(k *Kind) { k.FailsMessages = true } }

func newKind[C any, T any](role Role, name, summary string, defaults C, build func(*C, Env) (T, error), opts []Option) Kind {
	if reflect.TypeFor[C]().Kind() != reflect.Struct {
		panic(fmt.Sprintf("component %q: config must be a struct, not %T", name, defaults))
	}
	k := Kind{
		Name:    name,
		Role:    role,
		Summary: summary,
		newConfig: func() any {
			c := defaults
			return &c
		},
		build: func(cfg any, env Env) (any, error) { return build(cfg.(*C), env) },
	}
	k.Fields = fieldsOf(reflect.ValueOf(defaults))
	for _, o := range opts {
		o(&k)
	}
	return k
}

// Source declares a source kind with config type C.
func Source[C any](name, summary string, defaults C, build func(*C, Env) (pipeline.Source, error), opts ...Option) Kind {
	return newKind(RoleSource, name, summary, defaults, build, opts)
}

// Stage declares a stage kind; build returns a pipeline.Processor or a
// pipeline.Stage.
func Stage[C any](name, summary string, defaults C, build func(*C, Env) (any, error), opts ...Option) Kind {
	return newKind(RoleStage, name, summary, defaults, build, opts)
}

// Sink declares a sink kind with config type C.
func Sink[C any](name, summary string, defaults C, build func(*C, Env) (pipeline.Sink, error), opts ...Option) Kind {
	return newKind(RoleSink, name, summary, defaults, build, opts)
}

// Registry holds kinds by role and name. The zero value is not usable; use
// NewRegistry. A Registry is safe for concurrent use.
type Registry struct {
	mu    sync.RWMutex
	kinds map[Role]map[string]*Kind
}

// NewRegistry returns an empty registry, for tests and embedders that want
// only their own kinds.
func NewRegistry() *Registry {
	return &Registry{kinds: map[Role]map[string]*Kind{}}
}

// Default is the registry that the built-in kinds register into from init.
var Default = NewRegistry()

// Register adds k; it fails if the role already has a kind of that name or
// if the spec is incomplete.
func (r *Registry) Register(k Kind) error {
	if k.Name == "" || strings.ToLower(k.Name) != k.Name {
		return fmt.Errorf("component: kind name %q must be non-empty lower case", k.Name)
	}
	if k.Shorthand != "" && !slices.ContainsFunc(k.Fields, func(f Field) bool { return f.Name == k.Shorthand }) {
		return fmt.Errorf("component %q: shorthand field %q does not exist", k.Name, k.Shorthand)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	byName := r.kinds[k.Role]
	if byName == nil {
		byName = map[string]*Kind{}
		r.kinds[k.Role] = byName
	}
	if _, dup := byName[k.Name]; dup {
		return fmt.Errorf("component: %s kind %q registered twice", k.Role, k.Name)
	}
	byName[k.Name] = &k
	return nil
}

// MustRegister is Register that panics, for init functions.
func (r *Registry) MustRegister(k Kind) {
	if err := r.Register(k); err != nil {
		panic(err)
	}
}

// Register adds k to the Default registry and panics on error.
func Register(k Kind) { Default.MustRegister(k) }

// Lookup returns the kind of that role and name.
func (r *Registry) Lookup(role Role, name string) (*Kind, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	k, ok := r.kinds[role][name]
	return k, ok
}

// Kinds returns the kinds of a role sorted by name.
func (r *Registry) Kinds(role Role) []*Kind {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]*Kind, 0, len(r.kinds[role]))
	for _, k := range r.kinds[role] {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b *Kind) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Names returns the kind names of a role, sorted.
func (r *Registry) Names(role Role) []string {
	var out []string
	for _, k := range r.Kinds(role) {
		out = append(out, k.Name)
	}
	return out
}
