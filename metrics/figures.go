package metrics

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pipe-dsl/pipe/pipeline"
)

// figureCollector exports every node's [pipeline.Figure]s, read from
// StatsFunc at scrape time, as pipe_<scope or kind>_<name> with the labels
// pipeline, node, kind and the figure's own label; counters end in _total.
//
// It is a Prometheus collector rather than OpenTelemetry instruments because
// figure names are only known once the nodes report them: an OTel instrument
// has to be created before its first observation.
type figureCollector struct{ stats StatsFunc }

// Describe sends nothing: the collector is unchecked, its metrics vary
// with the pipeline.
func (c figureCollector) Describe(chan<- *prometheus.Desc) {}

func (c figureCollector) Collect(ch chan<- prometheus.Metric) {
	name, ss := c.stats()
	descs := map[string]figureDesc{}
	for _, s := range ss {
		for _, f := range s.Figures {
			mname := FigureName(s.Kind, f)
			if reserved(mname) {
				continue // would clash with the node counters
			}
			d, ok := descs[mname]
			if !ok {
				d = newFigureDesc(mname, f)
				descs[mname] = d
			}
			if d.kind != f.Kind || d.label != f.Label {
				continue // a name's series must share kind and labels
			}
			values := []string{name, s.Name, s.Kind}
			if f.Label != "" {
				values = append(values, f.LabelValue)
			}
			typ := prometheus.CounterValue
			if f.Kind == pipeline.Gauge {
				typ = prometheus.GaugeValue
			}
			m, err := prometheus.NewConstMetric(d.desc, typ, f.Value, values...)
			if err != nil {
				continue
			}
			ch <- m
		}
	}
}

type figureDesc struct {
	desc  *prometheus.Desc
	kind  pipeline.FigureKind
	label string
}

func newFigureDesc(name string, f pipeline.Figure) figureDesc {
	labels := []string{"pipeline", "node", "kind"}
	if f.Label != "" {
		l := sanitize(f.Label)
		if l == "pipeline" || l == "node" || l == "kind" {
			l = "figure_" + l
		}
		labels = append(labels, l)
	}
	help := f.Help
	if help == "" {
		help = f.Name
	}
	return figureDesc{prometheus.NewDesc(name, help, labels, nil), f.Kind, f.Label}
}

// FigureName is the Prometheus name of figure f of a node of kind kind:
// pipe_<scope>_<name>, or pipe_<kind>_<name> when f has no scope, with
// _total appended to counters; characters other than letters, digits and
// underscores become underscores.
func FigureName(kind string, f pipeline.Figure) string {
	scope := f.Scope
	if scope == "" {
		scope = kind
	}
	n := "pipe_" + sanitize(scope) + "_" + sanitize(f.Name)
	if f.Kind == pipeline.Counter && !strings.HasSuffix(n, "_total") {
		n += "_total"
	}
	return n
}

// reserved reports whether name belongs to the instruments New registers
// itself: a node of kind "node" or "trace" must not break the scrape.
func reserved(name string) bool {
	for _, p := range []string{"pipe_node_", "pipe_source_", "pipe_trace_"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '_'
	}, s)
}
