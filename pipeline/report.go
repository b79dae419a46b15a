package pipeline

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
type Figure struct {
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

// report returns the figures of n's implementation, or nil.
func (n *node) report() []Figure {
	for _, v := range []any{n.src, n.proc, n.stage, n.sink} {
		if r, ok := v.(Reporter); ok && v != nil {
			return r.Report()
		}
	}
	return nil
}
