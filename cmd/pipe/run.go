package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pipe-dsl/pipe/dsl"
	"github.com/pipe-dsl/pipe/metrics"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/tracing"
)

func cmdRun(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	drain := fs.Duration("drain-timeout", 0, "bound on the soft stop after SIGINT/SIGTERM (default: the file's drain_timeout, else 30s)")
	logFormat := fs.String("log-format", "", "log format: text or json (default: text on a terminal, json otherwise)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	quiet := fs.Bool("quiet", false, "no \"pipeline started\" line, live progress or end-of-run summary")
	httpFlag := fs.String("http", "", "serve the live page (/), /api/v1/stats, taps, /metrics, /healthz and /readyz on `ADDR`, e.g. 127.0.0.1:9464; a bare :PORT is loopback only (default: the file's metrics.http)")
	httpToken := fs.String("http-token", "", "bearer `TOKEN` required by the live page, API and taps; without one a non-loopback --http serves only /metrics and probes (default: $PIPE_HTTP_TOKEN)")
	watch := fs.Bool("watch", false, "reload when FILE changes: compile the new version, drain the old pipeline, start the new one")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: pipe run [flags] FILE")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitConfig
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitConfig
	}
	file := fs.Arg(0)
	logger, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "pipe run: %v\n", err)
		return exitConfig
	}
	defer routeLibraryLogs(logger)()
	var tracer pipeline.Tracer
	var first *dsl.Config
	load := func() (*dsl.Compiled, error) {
		p, err := dsl.Load(file, &dsl.CompileOptions{Logger: logger})
		if err != nil {
			return nil, err
		}
		if *drain > 0 {
			p.DrainTimeout = *drain
		}
		if tracer != nil {
			p.Tracer = tracer
		}
		if first != nil {
			warnRestartOnly(logger, first, p.Config)
		}
		return p, nil
	}
	p, err := load()
	if err != nil {
		reportConfigError(stderr, file, err)
		return exitConfig
	}
	first = p.Config
	tc := tracingConfig(p.Config)
	// The stdout exporter writes to stderr: stdout carries messages
	// (a stdout sink), and spans mixed into them would corrupt both.
	tc.Stdout = stderr
	traces, err := tracing.New(context.Background(), tc)
	if err != nil {
		fmt.Fprintf(stderr, "pipe run: %v\n", err)
		return exitConfig
	}
	if traces.Tracer != nil {
		tracer = traces.Tracer
		p.Tracer = tracer
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := traces.Shutdown(sctx); err != nil {
			logger.Warn("trace export incomplete", "err", err)
		}
		if traces.TracerProvider != nil && !*quiet {
			printSpanSummary(stderr, traces.Stats())
		}
	}()
	w := &watcher{file: file, load: load, logger: logger, stderr: stderr, cur: p}
	if !*quiet {
		w.summary = func(p *dsl.Compiled, d time.Duration) { printSummary(stderr, p.Stats(), d) }
	}
	addr := *httpFlag
	if *httpToken == "" {
		*httpToken = os.Getenv("PIPE_HTTP_TOKEN")
	}
	if addr == "" && p.Config.Metrics != nil {
		addr = p.Config.Metrics.HTTP
	}
	var exp *metrics.Exporter
	if addr != "" {
		var stopHTTP func()
		exp, _, stopHTTP, err = serveHTTP(addr, *httpToken, w, traces, logger)
		if err != nil {
			fmt.Fprintf(stderr, "pipe run: --http %s: %v\n", addr, err)
			return exitConfig
		}
		defer stopHTTP()
	}

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	sigDone := make(chan struct{})
	defer close(sigDone)
	// stuck closes when the stop has outlasted its bound by stopGrace: a
	// node is blocked in a call that ignores cancellation. pipe then exits
	// without acking what is in flight.
	stuck := make(chan struct{})
	// signalled records the first signal (the soft stop), aborted the
	// second: the operator's abort.
	var signalled, aborted atomic.Bool
	go func() {
		select {
		case s := <-sigs:
			signalled.Store(true)
			logger.Info("draining; send the signal again to abort", "signal", s.String())
			if exp != nil {
				exp.SetReady(false)
			}
			stop()
		case <-sigDone:
			return
		}
		drainBound := w.current().DrainTimeout
		if drainBound <= 0 {
			drainBound = pipeline.DefaultDrainTimeout
		}
		bound := time.NewTimer(drainBound + stopGrace)
		defer bound.Stop()
		select {
		case <-sigs:
			logger.Warn("aborting: in-flight messages are nacked")
			aborted.Store(true)
			w.current().Kill()
			bound.Reset(stopGrace)
		case <-bound.C:
			close(stuck)
			return
		case <-sigDone:
			return
		}
		select {
		case <-bound.C:
			close(stuck)
		case <-sigDone:
		}
	}()

	start := time.Now()
	if exp != nil {
		exp.SetReady(true)
	}
	if !*quiet {
		logger.Info("pipeline started", "pipeline", p.Config.Name, "file", file)
	}
	stopProgress := func() {}
	if !*quiet {
		stopProgress = startProgress(stderr, logger, func() []pipeline.NodeStats { return w.current().Stats() })
		defer stopProgress()
	}
	done := make(chan error, 1)
	go func() {
		if !*watch {
			done <- p.Run(ctx)
			return
		}
		pollCtx, stopPoll := context.WithCancel(context.Background())
		defer stopPoll()
		changed := make(chan struct{}, 1)
		var polling sync.WaitGroup
		polling.Go(func() { pollChanges(pollCtx, file, 250*time.Millisecond, changed) })
		err := w.run(ctx, p, changed)
		stopPoll()
		polling.Wait()
		done <- err
	}()
	var runErr error
	select {
	case runErr = <-done:
	case <-stuck:
		runErr = errors.New("stop did not finish: a node ignores cancellation; exiting without acking in-flight messages")
	}
	p = w.current()
	if exp != nil {
		exp.SetReady(false)
	}
	stats := p.Stats()
	nacked, nackLine := undelivered(stats)
	if !*quiet {
		stopProgress()
		printSummary(stderr, stats, time.Since(start))
		if nacked > 0 {
			fmt.Fprintln(stderr, nackLine)
		}
	}
	if runErr == nil && signalled.Load() {
		// A message whose send the soft stop refused was nacked back to
		// its source (which redelivers it, if it can): stopping a source
		// on request is not a failure; other nacks still are.
		nacked -= abandonedAtStop(stats)
	}
	if runErr == nil && nacked > 0 {
		// A run that left source messages undelivered did not succeed,
		// even if every node returned cleanly: scripts read the status.
		if *quiet {
			logger.Error("pipeline failed", "err", nackLine)
		}
		return exitRuntime
	}
	if runErr != nil {
		var ab *pipeline.AbandonedError
		switch {
		case aborted.Load():
			// The second signal: say so, whether the nodes stopped after
			// the kill or pipe gave up on them, counting source messages.
			logger.Error("pipeline failed", "err", fmt.Sprintf("aborted by signal: %d source messages not delivered", nacked),
				"cause", runErr)
			return exitRuntime
		case errors.As(runErr, &ab):
			logger.Error("drain incomplete", "source_messages", ab.Sources, "in_flight", ab.InFlight)
		}
		logger.Error("pipeline failed", "err", runErr)
		return exitRuntime
	}
	return exitOK
}

// stopGrace is how long pipe waits for nodes to return after the hard stop
// before it exits regardless.
const stopGrace = 3 * time.Second

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %v", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "" {
		format = "json"
		if isTerminal(w) {
			format = "text"
		}
	}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format must be text or json, not %q", format)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
