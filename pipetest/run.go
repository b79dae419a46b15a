package pipetest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pipe-dsl/pipe/dsl"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

// Result is the outcome of one test case.
type Result struct {
	Name     string
	Line     int      // of the test in its file
	Failures []string // empty when the test passed
	Elapsed  time.Duration
}

// Options tune a run.
type Options struct {
	// Quiet is how long (real time) the pipeline must make no progress
	// before the virtual clock moves to its next timer. Default 20ms.
	Quiet time.Duration
	// Timeout bounds each test in real time. Default 30s.
	Timeout time.Duration
	// Filter, when set, runs only tests whose name contains it.
	Filter string
}

// RunFile runs every test of a test file. The error reports a test file or
// pipeline file that cannot be loaded (a configuration error).
func RunFile(ctx context.Context, path string, opts Options) ([]Result, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := Parse(path, src)
	if err != nil {
		return nil, err
	}
	pipePath := f.Pipeline
	if !filepath.IsAbs(pipePath) {
		pipePath = filepath.Join(filepath.Dir(path), pipePath)
	}
	lookup := func(k string) (string, bool) {
		if v, ok := f.Env[k]; ok {
			return v, true
		}
		return os.LookupEnv(k)
	}
	// Parse once up front so a broken pipeline is a config error.
	if _, err := dsl.ParseFile(pipePath, &dsl.Options{Lookup: lookup}); err != nil {
		return nil, err
	}
	var results []Result
	for _, c := range f.Tests {
		if opts.Filter != "" && !strings.Contains(c.Name, opts.Filter) {
			continue
		}
		start := time.Now()
		fails, err := runCase(ctx, pipePath, lookup, c, opts)
		if err != nil {
			return results, err
		}
		results = append(results, Result{Name: c.Name, Line: c.Line, Failures: fails, Elapsed: time.Since(start)})
	}
	return results, nil
}

// stubber is a stage whose results a test may fix (the lookup stage).
type stubber interface {
	Stub(results map[string]any) error
}

// harness holds the recorders of one run.
type harness struct {
	clock   *pipelinetest.FakeClock
	sources map[string]*feed
	sinks   map[string]*recorder
	dlq     *recorder
	dlqName string
	// breakers records circuit breaker transitions from the logs.
	breakers *transitions

	mu            sync.Mutex
	acked, nacked int
}

func runCase(ctx context.Context, pipePath string, lookup func(string) (string, bool), c *Case, opts Options) ([]string, error) {
	if opts.Quiet <= 0 {
		opts.Quiet = 20 * time.Millisecond
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	cfg, err := dsl.ParseFile(pipePath, &dsl.Options{Lookup: lookup})
	if err != nil {
		return nil, err
	}
	h := &harness{
		clock:    pipelinetest.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
		sources:  map[string]*feed{},
		sinks:    map[string]*recorder{},
		breakers: newTransitions(cfg.Name),
	}
	var sourceNames []string
	for _, n := range cfg.Nodes {
		if n.Role == pipeline.RoleSource {
			sourceNames = append(sourceNames, n.Name)
		}
	}
	resolve := func(name string) (string, error) {
		if name != "" {
			if !slices.Contains(sourceNames, name) {
				return "", fmt.Errorf("test %s: no source %q in %s (sources: %v)", c.Name, name, pipePath, sourceNames)
			}
			return name, nil
		}
		if len(sourceNames) != 1 {
			return "", fmt.Errorf("test %s: the pipeline has sources %v: name one under inputs", c.Name, sourceNames)
		}
		return sourceNames[0], nil
	}
	// Every send, in order: the initial inputs, then the steps.
	steps := c.Steps
	if len(c.Inputs) > 0 {
		steps = append([]Step{{Send: c.Inputs}}, steps...)
	}
	total := map[string]int{}
	for _, s := range steps {
		for name, bodies := range s.Send {
			n, err := resolve(name)
			if err != nil {
				return nil, err
			}
			total[n] += len(bodies)
		}
	}
	for _, n := range sourceNames {
		h.sources[n] = &feed{h: h, ch: make(chan []byte, total[n])}
	}
	for sink := range c.Faults {
		if !slices.ContainsFunc(cfg.Nodes, func(n *dsl.Node) bool { return n.Name == sink && n.Role == pipeline.RoleSink }) &&
			(cfg.DeadLetter == nil || sink != cfg.DeadLetter.Name) {
			return nil, fmt.Errorf("test %s: faults: no sink %q in %s", c.Name, sink, pipePath)
		}
	}
	stubbed := map[string]bool{}
	compiled, err := dsl.Compile(cfg, &dsl.CompileOptions{
		Options: dsl.Options{Lookup: lookup},
		Clock:   h.clock,
		Logger:  slog.New(h.breakers),
		Adjust: func(n *dsl.Node, v any) error {
			results, ok := c.Stubs[n.Name]
			if !ok {
				return nil
			}
			s, ok := v.(stubber)
			if !ok {
				return fmt.Errorf("test %s: stubs: node %q is not a lookup stage", c.Name, n.Name)
			}
			stubbed[n.Name] = true
			return s.Stub(results)
		},
		Replace: func(n *dsl.Node) (any, bool) {
			switch {
			case n.Role == pipeline.RoleSource:
				return h.sources[n.Name], true
			case n.Role == pipeline.RoleSink:
				r := &recorder{clock: h.clock, fault: c.Faults[n.Name]}
				if n == cfg.DeadLetter {
					h.dlq, h.dlqName = r, n.Name
				} else {
					h.sinks[n.Name] = r
				}
				return r, true
			}
			return nil, false
		},
	})
	if err != nil {
		return nil, err
	}
	for node := range c.Stubs {
		if !stubbed[node] {
			return nil, fmt.Errorf("test %s: stubs: no node %q in %s", c.Name, node, pipePath)
		}
	}

	runCtx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- compiled.Run(runCtx) }()

	var fails []string
	failf := func(format string, args ...any) { fails = append(fails, fmt.Sprintf(format, args...)) }
	for _, s := range steps {
		if s.Advance > 0 {
			h.settle(compiled.Pipeline, opts.Quiet, done)
			h.clock.Advance(s.Advance)
			continue
		}
		for name, bodies := range s.Send {
			n, _ := resolve(name)
			for _, b := range bodies {
				h.sources[n].ch <- b // buffered for every send
			}
		}
		h.settle(compiled.Pipeline, opts.Quiet, done)
	}
	for _, f := range h.sources {
		close(f.ch)
	}
	// Drain: whenever the pipeline is idle, jump to its next timer.
	var runErr error
	for finished := false; !finished; {
		select {
		case runErr = <-done:
			finished = true
			continue
		default:
		}
		if !h.settle(compiled.Pipeline, opts.Quiet, done) {
			continue
		}
		if d, ok := h.clock.Next(); ok {
			h.clock.Advance(d)
		} else if runCtx.Err() != nil {
			runErr = <-done
			finished = true
		}
	}
	switch {
	case runCtx.Err() != nil && ctx.Err() == nil:
		failf("pipeline did not finish within %s (real time): stuck with no timer armed", opts.Timeout)
	case runErr != nil:
		failf("run: %v", runErr)
	}
	h.check(c, compiled.Pipeline, failf)
	return fails, nil
}

// settle waits until the pipeline has made no progress for quiet, or has
// finished; it reports whether the pipeline is idle but still running.
func (h *harness) settle(p *pipeline.Pipeline, quiet time.Duration, done chan error) bool {
	last := h.progress(p)
	tick := time.NewTicker(quiet / 4)
	defer tick.Stop()
	still := 0
	for still < 4 {
		select {
		case err := <-done:
			done <- err // leave it for the caller
			return false
		case <-tick.C:
		}
		if now := h.progress(p); now != last {
			last, still = now, 0
			continue
		}
		still++
	}
	return true
}

// progress is a fingerprint of everything that moves during a run.
func (h *harness) progress(p *pipeline.Pipeline) string {
	h.mu.Lock()
	fp := fmt.Sprint(h.acked, h.nacked, h.clock.Timers(), h.breakers.count())
	h.mu.Unlock()
	for _, s := range p.Stats() {
		fp += fmt.Sprint(s.In, s.Out, s.Failed, s.Dropped, s.DeadLettered, s.Nacked, s.Queued)
	}
	for _, f := range h.sources {
		fp += fmt.Sprint(len(f.ch))
	}
	return fp
}

// feed is a source that sends what the test hands it until closed.
type feed struct {
	h  *harness
	ch chan []byte
}

func (f *feed) Read(ctx context.Context, out pipeline.Outlet) error {
	for b := range f.ch {
		m := pipeline.NewMessage(b, func(err error) {
			f.h.mu.Lock()
			defer f.h.mu.Unlock()
			if err != nil {
				f.h.nacked++
			} else {
				f.h.acked++
			}
		})
		if out.Send(ctx, m) != nil {
			return nil
		}
	}
	return nil
}

// recorder is a sink that records what it accepts, after the injected
// fault.
type recorder struct {
	clock pipeline.Clock
	fault Fault

	mu      sync.Mutex
	calls   int
	writes  [][]byte
	reasons []string // batch.flush_reason of each batch accepted
}

func (r *recorder) Write(ctx context.Context, m *pipeline.Message) error {
	if r.fault.Latency > 0 {
		t := r.clock.NewTimer(r.fault.Latency)
		select {
		case <-t.C():
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.calls <= r.fault.Fail {
		return errors.New(r.fault.Error)
	}
	if b := m.Batch(); b != nil {
		r.reasons = append(r.reasons, m.Meta[flushReasonMeta])
		for _, x := range b {
			r.writes = append(r.writes, slices.Clone(x.Body))
		}
		return nil
	}
	r.writes = append(r.writes, slices.Clone(m.Body))
	return nil
}

// flushReasonMeta is the Meta key the batch stage sets on each batch.
const flushReasonMeta = "batch.flush_reason"

func (r *recorder) flushReasons() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reasons)
}

func (r *recorder) bodies() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.writes)
}
