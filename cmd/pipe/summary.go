package main

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
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

// undelivered counts the source messages that ended nacked, or were still
// unresolved when pipe gave up, and says so in
// one line with the top reasons, e.g. "8 source messages not delivered
// (nacked): sink_error 6, expression_error 2". It returns 0 and "" when every
// source message was acked.
func undelivered(stats []pipeline.NodeStats) (int64, string) {
	var total int64
	reasons := map[string]int64{}
	for _, s := range stats {
		if s.Role != pipeline.RoleSource {
			continue
		}
		total += s.Nacked
		for r, c := range s.NackReasons {
			reasons[r] += c
		}
		// Neither acked nor nacked: still in flight when pipe gave up.
		if open := s.Out - s.Acked - s.Nacked; open > 0 {
			total += open
			reasons["in_flight"] += open
		}
	}
	if total == 0 {
		return 0, ""
	}
	type rc struct {
		reason string
		n      int64
	}
	var top []rc
	for r, c := range reasons {
		top = append(top, rc{r, c})
	}
	slices.SortFunc(top, func(a, b rc) int {
		return cmp.Or(cmp.Compare(b.n, a.n), strings.Compare(a.reason, b.reason))
	})
	var parts []string
	for i, t := range top {
		if i == topReasons {
			parts = append(parts, "...")
			break
		}
		parts = append(parts, fmt.Sprintf("%s %d", t.reason, t.n))
	}
	noun := "messages"
	if total == 1 {
		noun = "message"
	}
	line := fmt.Sprintf("%d source %s not delivered (nacked)", total, noun)
	if len(parts) > 0 {
		line += ": " + strings.Join(parts, ", ")
	}
	return total, line
}

// topReasons is how many nack reasons the last line of the summary names.
const topReasons = 3

// abandonedAtStop counts the source messages nacked as abandoned: at a
// clean soft stop, those whose send the stop refused.
func abandonedAtStop(stats []pipeline.NodeStats) int64 {
	var n int64
	for _, s := range stats {
		if s.Role == pipeline.RoleSource {
			n += s.NackReasons["abandoned"]
		}
	}
	return n
}
