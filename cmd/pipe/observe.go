package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/pipe-dsl/pipe/dsl"
	"github.com/pipe-dsl/pipe/metrics"
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

// serveMetrics listens on addr and serves the metrics exporter of the
// watcher's current pipeline until stop is called.
func serveMetrics(addr string, w *watcher, traces *tracing.Provider, logger *slog.Logger) (*metrics.Exporter, func(), error) {
	var spans metrics.SpanStatsFunc
	if traces.TracerProvider != nil {
		spans = func() metrics.SpanStats {
			s := traces.Stats()
			return metrics.SpanStats{Ended: s.Ended, Exported: s.Exported, Failed: s.Failed, Dropped: s.Dropped}
		}
	}
	exp, err := metrics.New(func() (string, []pipeline.NodeStats) {
		c := w.current()
		return c.Config.Name, c.Stats()
	}, spans)
	if err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		_ = exp.Shutdown(context.Background())
		return nil, nil, err
	}
	srv := &http.Server{Handler: exp.Handler(), ReadHeaderTimeout: 5 * time.Second}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics server failed", "err", err)
		}
	})
	logger.Info("serving metrics", "addr", ln.Addr().String(), "paths", "/metrics /healthz /readyz")
	return exp, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		wg.Wait()
		_ = exp.Shutdown(ctx)
	}, nil
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
