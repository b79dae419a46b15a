package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/pipe-dsl/pipe/pipeline"
)

// Intervals of the live view: redraws on a terminal, log lines otherwise.
const (
	ttyRefresh  = 250 * time.Millisecond
	logInterval = 10 * time.Second
)

// backpressureAt is the input-buffer fill from which a node is shown as
// pushing back on its producers.
const backpressureAt = 0.8

// progress shows what a running pipeline does: on a terminal one redrawn
// line per node, otherwise one log line per node per tick.
type progress struct {
	stats  func() []pipeline.NodeStats
	tty    bool
	w      io.Writer    // the terminal, when tty
	logger *slog.Logger // when not tty

	prev  []pipeline.NodeStats
	last  time.Time
	lines int // lines drawn last time, to move back over
}

// run draws on every tick until done is closed, then, on a terminal, draws
// the final state once more.
func (p *progress) run(tick <-chan time.Time, done <-chan struct{}) {
	for {
		select {
		case now := <-tick:
			p.draw(now)
		case <-done:
			if p.tty {
				p.draw(time.Now())
			}
			return
		}
	}
}

func (p *progress) draw(now time.Time) {
	cur := p.stats()
	dt := now.Sub(p.last).Seconds()
	if p.last.IsZero() || len(p.prev) != len(cur) {
		p.prev, dt = nil, 0
	}
	if !p.tty {
		for i, s := range cur {
			p.logger.Info("progress", "node", s.Name, "kind", s.Kind,
				"in", s.In, "out", s.Out, "failed", s.Failed, "dropped", s.Dropped,
				"dead_lettered", s.DeadLettered, "rate", fmt.Sprintf("%.1f/s", rate(p.prev, i, s, dt)),
				"queued", s.Queued, "buffer", s.Buffer)
		}
	} else {
		var b strings.Builder
		if p.lines > 0 {
			fmt.Fprintf(&b, "\x1b[%dA", p.lines)
		}
		for i, s := range cur {
			b.WriteString("\x1b[2K")
			b.WriteString(progressLine(s, rate(p.prev, i, s, dt)))
			b.WriteByte('\n')
		}
		p.lines = len(cur)
		io.WriteString(p.w, b.String())
	}
	p.prev, p.last = cur, now
}

// rate is node i's messages per second since the previous snapshot:
// produced for a source, received otherwise.
func rate(prev []pipeline.NodeStats, i int, s pipeline.NodeStats, dt float64) float64 {
	if prev == nil || dt <= 0 {
		return 0
	}
	return float64(throughput(s)-throughput(prev[i])) / dt
}

func throughput(s pipeline.NodeStats) int64 {
	if s.Role == pipeline.RoleSource {
		return s.Out
	}
	return s.In
}

// progressLine is one node's line of the live view, e.g.
//
//	enrich   map     1520.0/s  in 10240  out 10200  fail 3  drop 37  dlq 3  queue 120/128 ▇▇▇▇▇▇▇▇ backpressure
func progressLine(s pipeline.NodeStats, r float64) string {
	line := fmt.Sprintf("%-14s %-10s %9.1f/s  in %-8d out %-8d fail %-5d drop %-5d dlq %-5d",
		clip(s.Name, 14), clip(s.Kind, 10), r, throughput(s), s.Out, s.Failed, s.Dropped, s.DeadLettered)
	if s.Buffer == 0 {
		return strings.TrimRight(line, " ")
	}
	fill := float64(s.Queued) / float64(s.Buffer)
	line += fmt.Sprintf(" queue %d/%d %s", s.Queued, s.Buffer, bar(fill, 8))
	if fill >= backpressureAt {
		line += " backpressure"
	}
	return line
}

func bar(fill float64, width int) string {
	n := int(fill*float64(width) + 0.5)
	n = min(max(n, 0), width)
	return strings.Repeat("▇", n) + strings.Repeat("·", width-n)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
