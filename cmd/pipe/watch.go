package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"reflect"
	"sync"
	"time"

	"github.com/pipe-dsl/pipe/dsl"
)

// watcher runs a pipeline file and replaces the running pipeline when the
// file changes (pipe run --watch). A new version is compiled first; if it
// does not compile, the old pipeline keeps running and the errors are
// printed. Otherwise the old pipeline drains (its acked messages are done,
// its in-flight ones finish or are nacked for redelivery) before the new
// one starts, so nothing acked is lost or processed twice by pipe.
type watcher struct {
	file    string
	load    func() (*dsl.Compiled, error)
	logger  *slog.Logger
	stderr  io.Writer
	summary func(*dsl.Compiled, time.Duration) // called after each pipeline ends
	// notify, if set, hears "started" when a pipeline starts and
	// "rejected" when a change did not compile.
	notify func(event string)

	mu  sync.Mutex
	cur *dsl.Compiled
}

// current is the running pipeline, for Kill on a second signal.
func (w *watcher) current() *dsl.Compiled {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cur
}

// run runs p, reloading on every value from changed, until ctx is
// cancelled. It returns the error of the last pipeline's Run.
func (w *watcher) run(ctx context.Context, p *dsl.Compiled, changed <-chan struct{}) error {
	for {
		w.mu.Lock()
		w.cur = p
		w.mu.Unlock()
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- p.Run(runCtx) }()
		w.event("started")

		next, err := w.next(ctx, done, changed)
		stop()
		if next == nil { // ctx ended, or the pipeline failed
			return err
		}
		w.logger.Info("reloading: draining the running pipeline", "file", w.file)
		err = <-done
		if w.summary != nil {
			w.summary(p, time.Since(start))
		}
		if err != nil {
			w.logger.Error("the old pipeline did not drain cleanly; not starting the new one", "err", err)
			return err
		}
		w.logger.Info("pipeline reloaded", "pipeline", next.Config.Name, "file", w.file)
		p = next
	}
}

// next waits while the pipeline runs for a change that compiles. It
// returns nil and Run's error when the run ends for good: ctx was
// cancelled or the pipeline failed. A pipeline that finishes cleanly waits
// for the next change.
func (w *watcher) next(ctx context.Context, done chan error, changed <-chan struct{}) (*dsl.Compiled, error) {
	finished := false
	for {
		select {
		case err := <-done:
			if err != nil || ctx.Err() != nil {
				return nil, err
			}
			finished = true
			done <- nil // for run to collect after a reload
			w.logger.Info("pipeline finished; waiting for the file to change", "file", w.file)
			done = nil
		case <-ctx.Done():
			if finished {
				return nil, nil
			}
			return nil, <-done
		case <-changed:
			n, err := w.load()
			if err != nil {
				w.logger.Error("reload rejected: the new version does not compile; the running pipeline continues", "file", w.file)
				reportConfigError(w.stderr, w.file, err)
				w.event("rejected")
				continue
			}
			return n, nil
		}
	}
}

// warnRestartOnly logs the sections that changed between the file pipe
// started with and a reloaded version but that a reload does not apply:
// tracing and metrics are set up once per process.
func warnRestartOnly(logger *slog.Logger, first, next *dsl.Config) {
	if !reflect.DeepEqual(first.Tracing, next.Tracing) {
		logger.Warn("reload: the tracing section changed; it takes effect when pipe restarts")
	}
	if !reflect.DeepEqual(first.Metrics, next.Metrics) {
		logger.Warn("reload: the metrics section changed; it takes effect when pipe restarts")
	}
}

func (w *watcher) event(e string) {
	if w.notify != nil {
		w.notify(e)
	}
}

// pollChanges reports on changed (capacity 1) whenever file's size or
// modification time changes, until ctx ends.
func pollChanges(ctx context.Context, file string, every time.Duration, changed chan<- struct{}) {
	stamp := func() (time.Time, int64) {
		fi, err := os.Stat(file)
		if err != nil {
			return time.Time{}, -1
		}
		return fi.ModTime(), fi.Size()
	}
	mod, size := stamp()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m, s := stamp()
		if m.Equal(mod) && s == size {
			continue
		}
		mod, size = m, s
		select {
		case changed <- struct{}{}:
		default: // a reload is already pending
		}
	}
}
