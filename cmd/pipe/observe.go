package main

import (
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/pipe-dsl/pipe/dsl"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/tracing"
)

// tracingConfig maps the file's tracing section to package tracing's
// Config; the service name defaults to the pipeline's name.
func tracingConfig(c *dsl.Config) tracing.Config {
	tc := tracing.Config{ServiceName: c.Name}
	if t := c.Tracing; t != nil {
		tc.Exporter, tc.Endpoint, tc.Protocol = t.Exporter, t.Endpoint, t.Protocol
		tc.SampleRatio, tc.QueueSize, tc.Blocking = t.SampleRatio, t.QueueSize, t.Blocking
		if t.ServiceName != "" {
			tc.ServiceName = t.ServiceName
		}
	}
	return tc
}

// startProgress starts the live view on w (redrawn if w is a terminal,
// logged otherwise); the returned func stops it and may be called twice.
func startProgress(w io.Writer, logger *slog.Logger, stats func() []pipeline.NodeStats) func() {
	p := &progress{stats: stats, tty: isTerminal(w), w: w, logger: logger}
	every := logInterval
	if p.tty {
		every = ttyRefresh
	}
	t := time.NewTicker(every)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { p.run(t.C, done) })
	var once sync.Once
	return func() {
		once.Do(func() {
			t.Stop()
			close(done)
			wg.Wait()
		})
	}
}

// printSpanSummary reports what happened to the trace spans of the run.
func printSpanSummary(w io.Writer, s tracing.Stats) {
	fmt.Fprintf(w, "traces: %d spans exported, %d dropped (export queue full), %d failed to export\n",
		s.Exported, s.Dropped, s.Failed)
	if s.Dropped > 0 {
		fmt.Fprintln(w, "traces: raise tracing.queue_size or set tracing.blocking: true to keep every span")
	}
}
