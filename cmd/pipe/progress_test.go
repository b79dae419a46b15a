package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/pipeline"
)

func TestProgressLineShowsRateTotalsAndBackpressure(t *testing.T) {
	for _, tc := range []struct {
		s    pipeline.NodeStats
		rate float64
		want []string
		not  string
	}{
		{pipeline.NodeStats{Name: "gen", Kind: "generate", Role: pipeline.RoleSource, Out: 500}, 250,
			[]string{"gen", "generate", "250.0/s", "in 500"}, "queue"},
		{pipeline.NodeStats{Name: "enrich", Kind: "map", Role: pipeline.RoleStage, In: 90, Out: 80, Failed: 3, Dropped: 7, DeadLettered: 3, Queued: 120, Buffer: 128}, 12.5,
			[]string{"12.5/s", "in 90", "out 80", "fail 3", "drop 7", "dlq 3", "queue 120/128 ▇▇▇▇▇▇▇▇", "backpressure"}, ""},
		{pipeline.NodeStats{Name: "out", Kind: "file", Role: pipeline.RoleSink, In: 10, Queued: 2, Buffer: 128}, 0,
			[]string{"queue 2/128 ········"}, "backpressure"},
	} {
		got := progressLine(tc.s, tc.rate)
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("progressLine(%s) = %q, want it to contain %q", tc.s.Name, got, w)
			}
		}
		if tc.not != "" && strings.Contains(got, tc.not) {
			t.Errorf("progressLine(%s) = %q, want no %q", tc.s.Name, got, tc.not)
		}
	}
}

func TestProgressRedrawsInPlaceOnATerminal(t *testing.T) {
	const in = 5
	var buf bytes.Buffer
	p := &progress{tty: true, w: &buf, stats: func() []pipeline.NodeStats {
		return []pipeline.NodeStats{{Name: "a", Kind: "map", In: in, Buffer: 4}, {Name: "b", Kind: "file", In: in, Buffer: 4}}
	}}
	tick := make(chan time.Time)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() { p.run(tick, done); close(finished) }()
	t0 := time.Unix(0, 0)
	tick <- t0
	tick <- t0.Add(time.Second)
	close(done)
	<-finished
	out := buf.String()
	if n := strings.Count(out, "\x1b[2A"); n != 2 {
		t.Errorf("cursor-up-2 sequences = %d, want 2 (second tick and final draw)\n%q", n, out)
	}
	if n := strings.Count(out, "\n"); n != 6 {
		t.Errorf("lines drawn = %d, want 6 (2 nodes x 3 draws)", n)
	}
}

func TestProgressLogsPlainLinesWhenNotATerminal(t *testing.T) {
	var buf bytes.Buffer
	outs := []int64{100, 300}
	i := 0
	p := &progress{logger: slog.New(slog.NewTextHandler(&buf, nil)), stats: func() []pipeline.NodeStats {
		s := []pipeline.NodeStats{{Name: "gen", Kind: "generate", Role: pipeline.RoleSource, Out: outs[i]}}
		i++
		return s
	}}
	t0 := time.Unix(0, 0)
	p.draw(t0)
	p.draw(t0.Add(2 * time.Second))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("log lines = %d, want 2:\n%s", len(lines), buf.String())
	}
	if !strings.Contains(lines[1], "rate=100.0/s") || strings.Contains(buf.String(), "\x1b[") {
		t.Errorf("second line = %q, want rate=100.0/s and no escape sequences", lines[1])
	}
}
