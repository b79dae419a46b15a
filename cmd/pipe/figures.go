package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/pipe-dsl/pipe/pipeline"
)

// printFigures writes the nodes' own figures under the summary table, one
// line per node and figure name: a plain figure's value, or a labelled
// one's non-zero series as label=value ("flushes  reason: size=2 wait=1").
// Counters that stayed at zero and nodes without figures print nothing.
func printFigures(w io.Writer, stats []pipeline.NodeStats) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, s := range stats {
		type line struct {
			name, label string
			gauge       bool
			parts       []string
			total       float64
		}
		var lines []*line
		byName := map[string]*line{}
		for _, f := range s.Figures {
			name := f.Name
			if f.Scope != "" {
				name = f.Scope + " " + f.Name
			}
			l, ok := byName[name]
			if !ok {
				l = &line{name: name, label: f.Label, gauge: f.Kind == pipeline.Gauge}
				byName[name] = l
				lines = append(lines, l)
			}
			l.total += f.Value
			switch {
			case f.Label == "":
				l.parts = append(l.parts, num(f.Value))
			case f.Value != 0:
				l.parts = append(l.parts, f.LabelValue+"="+num(f.Value))
			}
		}
		for _, l := range lines {
			if !l.gauge && l.total == 0 {
				continue
			}
			v := strings.Join(l.parts, " ")
			if l.label != "" {
				v = l.label + ": " + v
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", s.Name, l.name, v)
		}
	}
	tw.Flush()
}

// num prints integral figures without a decimal point.
func num(v float64) string {
	if v == float64(int64(v)) {
		return fmt.Sprint(int64(v))
	}
	return fmt.Sprintf("%.3g", v)
}
