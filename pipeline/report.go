package pipeline

import (
	"maps"
	"slices"
)

// FigureKind says how a [Figure] behaves over time.
type FigureKind uint8

const (
	// Counter figures only grow (messages limited, flushes, transitions).
	Counter FigureKind = iota
	// Gauge figures go up and down (breaker state, open windows, keys held).
	Gauge
)

func (k FigureKind) String() string {
	if k == Gauge {
		return "gauge"
	}
	return "counter"
}

// Figure is one number a node reports beside its message counters: a
// throttle's limited count, a breaker's state, a batch's flushes by reason.
//
// Name is snake_case without a prefix ("limited", "flushes",
// "breaker_state"); exporters add the kind and the node ("pipe_throttle_limited
// {node="slow"}"). Label, if set, splits one name into series: Label is the
// label's name ("reason") and LabelValue this series' value ("size"). Figures
// of one name share Help, Kind and Label.
//
// Scope, if set, names what the figure belongs to when that is not the
// node's kind: a breaker or retry policy wrapped around a sink of any kind
// reports Scope "breaker" or "retry", and exporters put the scope where they
// would put the kind ("pipe_breaker_state{node="out",kind="http"}"), so one
// metric covers every kind.
type Figure struct {
	Scope      string
	Name       string
	Help       string
	Kind       FigureKind
	Label      string
	LabelValue string
	Value      float64
}

// Reporter is implemented by sources, processors, stages and sinks that have
// figures of their own. Report must be safe to call concurrently with the
// node's message path and cheap: it is read at every metrics scrape, every
// live-page update and at the end-of-run summary, never per message.
type Reporter interface {
	Report() []Figure
}

// report returns the figures of n's implementation, or nil; the
// dead-letter sink adds its dead letters by reason.
func (n *node) report() []Figure {
	var out []Figure
	for _, v := range []any{n.src, n.proc, n.stage, n.sink} {
		if r, ok := v.(Reporter); ok && v != nil {
			out = r.Report()
			break
		}
	}
	if n.role == RoleDeadLetter {
		out = append(out, n.reasons.figures()...)
	}
	return out
}

// figures returns one dead_letter_messages figure per reason, sorted.
func (c *reasonCounts) figures() []Figure {
	counts := c.snapshot()
	out := make([]Figure, 0, len(counts))
	for _, r := range slices.Sorted(maps.Keys(counts)) {
		out = append(out, Figure{Scope: "dead_letter", Name: "messages",
			Help: "Messages handed to the dead-letter sink, by reason.", Kind: Counter,
			Label: "reason", LabelValue: r, Value: float64(counts[r])})
	}
	return out
}
