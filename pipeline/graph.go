package pipeline

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultBuffer is the input buffer of a node whose options leave it zero.
const DefaultBuffer = 128

// DefaultDrainTimeout bounds the soft stop of a pipeline that sets none.
const DefaultDrainTimeout = 30 * time.Second

// NodeOptions tune how the runtime runs a stage or sink.
type NodeOptions struct {
	// Buffer is the capacity of the node's input channel: how many messages
	// may wait for it before upstream blocks. Zero means DefaultBuffer.
	Buffer int
	// Workers is how many goroutines call Process or Write. Zero means 1.
	Workers int
	// Ordered keeps output in input order when Workers > 1, holding at most
	// Buffer finished messages back while an earlier one is in progress.
	Ordered bool
}

// Pipeline is a graph of named nodes. Build it with Add* and Connect, then
// call Run once. A Pipeline is not safe for concurrent building; Run, Stats
// and Kill are safe to call concurrently.
type Pipeline struct {
	// Name labels logs and the dead-letter envelope.
	Name string
	// Logger receives run-time warnings; nil means slog.Default().
	Logger *slog.Logger
	// DrainTimeout bounds the soft stop; zero means DefaultDrainTimeout.
	DrainTimeout time.Duration
	// Clock timestamps dead letters; nil means SystemClock.
	Clock Clock
	// Tracer, if set, observes every message at every node (see package
	// tracing). Set it before Run.
	Tracer Tracer

	nodes   []*node
	byName  map[string]*node
	dlq     *node
	started atomic.Bool
	kill    atomic.Pointer[func()]
	tapMu   sync.Mutex // serialises changes to the nodes' taps
	// killed records that Kill, not the drain timeout, began the hard stop.
	killed atomic.Bool
}

type node struct {
	name, kind string
	role       Role
	opts       NodeOptions

	src   Source
	proc  Processor
	stage Stage
	sink  Sink

	// outs maps an output port ("" is the default) to its consumers.
	outs map[string][]*node
	// ins counts incoming edges; producers counts those not yet finished.
	ins       int
	producers atomic.Int32
	// in is the node's input. For a Stage it carries one message per
	// element; for a Processor, a Sink and the dead-letter sink (chained)
	// each element is a chain of up to link messages (see chain.go), and
	// queued counts the messages it holds.
	in      chan *Message
	chained bool
	link    int
	queued  atomic.Int64

	info       NodeInfo
	stats      counters
	abandoned  atomic.Int64
	lastLog    atomic.Int64
	suppressed atomic.Int64
	reasons    reasonCounts // dead letters by reason, on the dead-letter sink
	taps       tapOf
	recent     recentErrors
}

// New returns an empty pipeline.
func New(name string) *Pipeline {
	return &Pipeline{Name: name, byName: map[string]*node{}}
}

func (p *Pipeline) add(n *node) error {
	if n.name == "" {
		return errors.New("node name is empty")
	}
	if _, dup := p.byName[n.name]; dup {
		return fmt.Errorf("duplicate node name %q", n.name)
	}
	if n.opts.Buffer <= 0 {
		n.opts.Buffer = DefaultBuffer
	}
	if n.opts.Workers <= 0 {
		n.opts.Workers = 1
	}
	n.outs = map[string][]*node{}
	if n.role != RoleSource {
		n.makeInput()
	}
	p.byName[n.name] = n
	p.nodes = append(p.nodes, n)
	return nil
}

// AddSource adds a source node.
func (p *Pipeline) AddSource(name, kind string, s Source) error {
	return p.add(&node{name: name, kind: kind, role: RoleSource, src: s})
}

// AddStage adds a stage node; s must be a [Processor] or a [Stage].
func (p *Pipeline) AddStage(name, kind string, s any, o NodeOptions) error {
	n := &node{name: name, kind: kind, role: RoleStage, opts: o}
	switch s := s.(type) {
	case Processor:
		n.proc = s
	case Stage:
		n.stage = s
		if o.Workers > 1 {
			return fmt.Errorf("stage %q (%s) runs its own loop and cannot have workers", name, kind)
		}
	default:
		return fmt.Errorf("stage %q: %T is neither a Processor nor a Stage", name, s)
	}
	return p.add(n)
}

// AddSink adds a sink node. Its workers write concurrently, so a sink
// cannot be ordered with more than one worker.
func (p *Pipeline) AddSink(name, kind string, s Sink, o NodeOptions) error {
	if o.Ordered && o.Workers > 1 {
		return fmt.Errorf("sink %q (%s): ordered needs workers: 1; concurrent writes complete in any order", name, kind)
	}
	return p.add(&node{name: name, kind: kind, role: RoleSink, sink: s, opts: o})
}

// SetDeadLetter sets the sink that receives every failed message as a
// dead-letter envelope (see [DeadLetter]).
func (p *Pipeline) SetDeadLetter(kind string, s Sink, o NodeOptions) error {
	if p.dlq != nil {
		return errors.New("dead-letter sink already set")
	}
	n := &node{name: "dead_letter", kind: kind, role: RoleDeadLetter, sink: s, opts: o}
	if n.opts.Buffer <= 0 {
		n.opts.Buffer = DefaultBuffer
	}
	if n.opts.Workers <= 0 {
		n.opts.Workers = 1
	}
	n.makeInput()
	p.dlq = n
	return nil
}

// Connect adds an edge from the output port of node from ("" for the
// default port) to node to. Several edges from one port broadcast: each
// consumer gets every message.
func (p *Pipeline) Connect(from, port, to string) error {
	f, ok := p.byName[from]
	if !ok {
		return fmt.Errorf("connect: no node %q", from)
	}
	t, ok := p.byName[to]
	if !ok {
		return fmt.Errorf("connect: no node %q", to)
	}
	if f.role == RoleSink {
		return fmt.Errorf("connect: sink %q has no output", from)
	}
	if t.role == RoleSource {
		return fmt.Errorf("connect: source %q has no input", to)
	}
	r, isRouter := f.stageValue().(Router)
	switch {
	case port != "" && (!isRouter || !slices.Contains(r.Ports(), port)):
		return fmt.Errorf("connect: node %q has no output port %q", from, port)
	case port == "" && isRouter && !slices.Contains(r.Ports(), ""):
		return fmt.Errorf("connect: %q sends only to named ports; read one as %s.PORT (ports: %s)",
			from, from, strings.Join(r.Ports(), ", "))
	}
	if slices.Contains(f.outs[port], t) {
		return fmt.Errorf("connect: duplicate edge %s.%s -> %s", from, port, to)
	}
	f.outs[port] = append(f.outs[port], t)
	t.ins++
	return nil
}

func (n *node) stageValue() any {
	if n.proc != nil {
		return n.proc
	}
	return n.stage
}

// Validate reports structural errors: nodes without inputs or outputs,
// cycles, and nodes no source reaches.
func (p *Pipeline) Validate() error {
	var errs []error
	hasSource := false
	for _, n := range p.nodes {
		switch {
		case n.role == RoleSource:
			hasSource = true
			if len(n.outs) == 0 {
				errs = append(errs, fmt.Errorf("source %q feeds nothing", n.name))
			}
		case n.ins == 0:
			errs = append(errs, fmt.Errorf("%s %q has no inputs", n.role, n.name))
		case n.role == RoleStage && len(n.outs) == 0:
			errs = append(errs, fmt.Errorf("stage %q feeds nothing", n.name))
		}
	}
	if !hasSource {
		errs = append(errs, errors.New("pipeline has no source"))
	}
	if c := p.cycle(); c != nil {
		errs = append(errs, fmt.Errorf("cycle: %s", joinNames(c)))
	}
	seen := map[*node]bool{}
	var walk func(*node)
	walk = func(n *node) {
		if seen[n] {
			return
		}
		seen[n] = true
		for _, ts := range n.outs {
			for _, t := range ts {
				walk(t)
			}
		}
	}
	for _, n := range p.nodes {
		if n.role == RoleSource {
			walk(n)
		}
	}
	for _, n := range p.nodes {
		if !seen[n] && n.ins > 0 {
			errs = append(errs, fmt.Errorf("%s %q is unreachable from any source", n.role, n.name))
		}
	}
	return errors.Join(errs...)
}

func (p *Pipeline) cycle() []*node {
	const (
		white = iota
		grey
		black
	)
	color := map[*node]int{}
	var stack []*node
	var found []*node
	var visit func(*node) bool
	visit = func(n *node) bool {
		color[n] = grey
		stack = append(stack, n)
		for _, port := range sortedPorts(n.outs) {
			for _, t := range n.outs[port] {
				switch color[t] {
				case grey:
					i := slices.Index(stack, t)
					found = append(slices.Clone(stack[i:]), t)
					return true
				case white:
					if visit(t) {
						return true
					}
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
		return false
	}
	for _, n := range p.nodes {
		if color[n] == white && visit(n) {
			return found
		}
	}
	return nil
}

func sortedPorts(m map[string][]*node) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func joinNames(ns []*node) string {
	s := ""
	for i, n := range ns {
		if i > 0 {
			s += " -> "
		}
		s += n.name
	}
	return s
}

// Stats returns a snapshot of every node's counters, in the order the nodes
// were added, the dead-letter sink last.
func (p *Pipeline) Stats() []NodeStats {
	all := p.nodes
	if p.dlq != nil {
		all = append(slices.Clip(all), p.dlq)
	}
	out := make([]NodeStats, 0, len(all))
	for _, n := range all {
		s := NodeStats{
			Name: n.name, Kind: n.kind, Role: n.role,
			In:           n.stats.in.Load(),
			Out:          n.stats.out.Load(),
			Failed:       n.stats.failed.Load(),
			Dropped:      n.stats.dropped.Load(),
			DeadLettered: n.stats.deadLettered.Load(),
			Nacked:       n.stats.nacked.Load(),
			Acked:        n.stats.acked.Load(),
			NackReasons:  n.stats.nackReasons.snapshot(),
			Latency:      n.stats.latency.snapshot(),
			Buffer:       n.opts.Buffer,
		}
		if n.role == RoleSource {
			s.Buffer = 0
		}
		s.Queued = n.queuedNow()
		s.Figures = n.report()
		out = append(out, s)
	}
	return out
}
