package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/pipe-dsl/pipe/live"
	"github.com/pipe-dsl/pipe/pipeline"
)

// Sort orders of pipe top.
var topSorts = []string{"rate", "errors", "name", "graph"}

// cmdTop shows the live table of a running pipeline in the terminal, as a
// client of /api/v1/stats: the lines of pipe run's progress view, sorted
// by rate, errors, name or graph order, redrawn every interval.
func cmdTop(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("top", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", defaultAddr, "`ADDR` of the pipe run --http server")
	sortBy := fs.String("sort", "rate", "order of the nodes: rate, errors, name or graph")
	every := fs.Duration("interval", time.Second, "redraw every `D`")
	once := fs.Bool("once", false, "print one frame and exit")
	token := fs.String("token", "", "bearer `TOKEN` of the server (default: $PIPE_HTTP_TOKEN)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: pipe top [--addr ADDR] [--sort rate|errors|name|graph] [--once]")
		fmt.Fprintln(stderr, "While it runs, type r, e, n or g and Enter to sort by rate, errors, name or graph order; q to quit.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitConfig
	}
	if fs.NArg() != 0 || !slices.Contains(topSorts, *sortBy) || *every <= 0 {
		fs.Usage()
		return exitConfig
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	keys := make(chan string, 1)
	if !*once && stdin != nil {
		go readKeys(stdin, keys) // ends with stdin; pipe top exits before it matters
	}
	tty := isTerminal(stdout)
	t := time.NewTicker(*every)
	defer t.Stop()
	for {
		snap, code := fetchStats(ctx, *addr, *token, stderr)
		if snap == nil {
			if ctx.Err() != nil {
				return exitOK
			}
			return code
		}
		frame := topFrame(snap, *addr, *sortBy)
		if tty && !*once {
			frame = "\x1b[H\x1b[2J" + frame
		}
		io.WriteString(stdout, frame)
		if *once {
			return exitOK
		}
		select {
		case <-ctx.Done():
			return exitOK
		case k := <-keys:
			if k == "q" {
				return exitOK
			}
			for _, s := range topSorts {
				if s[:1] == k {
					*sortBy = s
				}
			}
		case <-t.C:
		}
	}
}

// readKeys sends the first letter of each line of r.
func readKeys(r io.Reader, keys chan<- string) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if k := strings.TrimSpace(sc.Text()); k != "" {
			keys <- k[:1]
		}
	}
}

func fetchStats(ctx context.Context, addr, token string, stderr io.Writer) (*live.Snapshot, int) {
	resp, code := apiGet(ctx, addr, "/api/v1/stats", token, stderr, "top")
	if resp == nil {
		return nil, code
	}
	defer resp.Body.Close()
	var snap live.Snapshot
	if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil {
		fmt.Fprintf(stderr, "pipe top: reading /api/v1/stats: %v\n", err)
		return nil, exitRuntime
	}
	return &snap, exitOK
}

// topFrame is one screen of pipe top: a header, then one progress line per
// node in the chosen order, with breakers and figures after the line.
func topFrame(s *live.Snapshot, addr, sortBy string) string {
	nodes := slices.Clone(s.Nodes)
	rateOf := func(n live.Node) float64 {
		if n.Role == pipeline.RoleSource.String() {
			return n.RateOut
		}
		return n.RateIn
	}
	errorsOf := func(n live.Node) int64 { return n.Failed + n.DeadLettered + n.Nacked }
	switch sortBy {
	case "rate":
		slices.SortStableFunc(nodes, func(a, b live.Node) int { return cmpDesc(rateOf(a), rateOf(b)) })
	case "errors":
		slices.SortStableFunc(nodes, func(a, b live.Node) int { return cmpDesc(float64(errorsOf(a)), float64(errorsOf(b))) })
	case "name":
		slices.SortStableFunc(nodes, func(a, b live.Node) int { return strings.Compare(a.Name, b.Name) })
	}
	var b strings.Builder
	fmt.Fprintf(&b, "pipe top  %s  %s  update %d  %s  sorted by %s\n\n", s.Pipeline, addr, s.Seq, s.Time.Local().Format("15:04:05"), sortBy)
	for _, n := range nodes {
		b.WriteString(progressLine(nodeStats(n), rateOf(n)))
		if n.Breaker != "" {
			b.WriteString("  breaker " + n.Breaker)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func cmpDesc(a, b float64) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}

// nodeStats is n as the progress view's NodeStats.
func nodeStats(n live.Node) pipeline.NodeStats {
	s := pipeline.NodeStats{
		Name: n.Name, Kind: n.Kind, In: n.In, Out: n.Out, Failed: n.Failed, Dropped: n.Dropped,
		DeadLettered: n.DeadLettered, Nacked: n.Nacked, Acked: n.Acked, Queued: n.Queued, Buffer: n.Buffer,
	}
	for _, r := range []pipeline.Role{pipeline.RoleSource, pipeline.RoleStage, pipeline.RoleSink, pipeline.RoleDeadLetter} {
		if r.String() == n.Role {
			s.Role = r
		}
	}
	return s
}
