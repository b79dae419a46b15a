package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/pipe-dsl/pipe/pipeline"
)

// printSummary writes the end-of-run table: one row per node, with the
// latency percentiles of its Process or Write calls; acked counts source
// messages whose delivery completed. The nodes' own figures (flushes by
// reason, breaker transitions...) follow the table.
func printSummary(w io.Writer, stats []pipeline.NodeStats, elapsed time.Duration) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "node\tkind\tin\tout\tfailed\tdropped\tdead-lettered\tacked\tnacked\tmin\tavg\tp50\tp99\tmax\t")
	for _, s := range stats {
		l := s.Latency
		in, acked := fmt.Sprint(s.In), "-"
		if s.Role == pipeline.RoleSource {
			in, acked = "-", fmt.Sprint(s.Acked)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t\n",
			s.Name, s.Kind, in, s.Out, s.Failed, s.Dropped, s.DeadLettered, acked, s.Nacked,
			dur(l.Min, l.Count), dur(l.Mean, l.Count), dur(l.P50, l.Count), dur(l.P99, l.Count), dur(l.Max, l.Count))
	}
	tw.Flush()
	printFigures(w, stats)
	fmt.Fprintf(w, "finished in %s\n", elapsed.Round(time.Millisecond))
}

func dur(d time.Duration, n int64) string {
	if n == 0 {
		return "-"
	}
	switch {
	case d < time.Microsecond:
		return d.String()
	case d < time.Millisecond:
		return d.Round(100 * time.Nanosecond).String()
	}
	return d.Round(10 * time.Microsecond).String()
}
