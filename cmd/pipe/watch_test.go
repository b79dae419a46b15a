package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/pipe-dsl/pipe/dsl"
	"github.com/pipe-dsl/pipe/pipeline"
)

// broker is a queue that outlives pipelines, like a message broker: a
// message leaves it when acked and goes back when nacked.
type broker struct {
	ch    chan string
	mu    sync.Mutex
	acked map[string]int
}

func (b *broker) Read(ctx context.Context, out pipeline.Outlet) error {
	for {
		var body string
		select {
		case <-ctx.Done():
			return nil
		case body = <-b.ch:
		}
		m := pipeline.NewMessage([]byte(body), func(err error) {
			if err != nil {
				b.ch <- body // redeliver
				return
			}
			b.mu.Lock()
			b.acked[body]++
			b.mu.Unlock()
		})
		if out.Send(ctx, m) != nil {
			return nil
		}
	}
}

// notifySink reports every body it accepts.
type notifySink chan string

func (s notifySink) Write(_ context.Context, m *pipeline.Message) error {
	s <- string(m.Body)
	return nil
}

func TestWatchReloadsOnlyVersionsThatCompileAndLosesNothing(t *testing.T) {
	b := &broker{ch: make(chan string, 16), acked: map[string]int{}}
	got := make(notifySink, 16)
	version := `source: {stdin: {}}
stages: [{map: '{"n": msg.n, "v": 1}'}]
sink: {stdout: {}}`
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	load := func() (*dsl.Compiled, error) {
		c, err := dsl.Parse("p.yaml", []byte(version), nil)
		if err != nil {
			return nil, err
		}
		return dsl.Compile(c, &dsl.CompileOptions{Logger: logger, Replace: func(n *dsl.Node) (any, bool) {
			switch n.Role {
			case pipeline.RoleSource:
				return b, true
			case pipeline.RoleSink:
				return got, true
			}
			return nil, false
		}})
	}
	p, err := load()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	events := make(chan string, 8)
	w := &watcher{file: "p.yaml", load: load, logger: logger, stderr: &stderr,
		notify: func(e string) { events <- e }}
	next := func(want string) {
		t.Helper()
		if e := <-events; e != want {
			t.Fatalf("watcher event %q, want %q", e, want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	changed := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- w.run(ctx, p, changed) }()
	next("started")

	expect := func(want string) {
		t.Helper()
		if body := <-got; body != want {
			t.Fatalf("sink got %s, want %s", body, want)
		}
	}
	b.ch <- `{"n":1}`
	expect(`{"n":1,"v":1}`)

	version = `source: {stdin: {}}
stages: [{map: '{"n": msg.n, "v": }'}]
sink: {stdout: {}}`
	changed <- struct{}{}
	next("rejected")
	if !strings.Contains(stderr.String(), "Syntax error") {
		t.Errorf("rejected reload did not print its errors:\n%s", stderr.String())
	}
	b.ch <- `{"n":2}`
	expect(`{"n":2,"v":1}`) // the old pipeline still runs

	version = `source: {stdin: {}}
stages: [{map: '{"n": msg.n, "v": 2}'}]
sink: {stdout: {}}`
	changed <- struct{}{}
	next("started")
	b.ch <- `{"n":3}`
	expect(`{"n":3,"v":2}`)

	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	for _, body := range []string{`{"n":1}`, `{"n":2}`, `{"n":3}`} {
		if n := b.acked[body]; n != 1 {
			t.Errorf("%s acked %d times, want once", body, n)
		}
	}
	if len(got) != 0 {
		t.Errorf("sink got %d extra messages", len(got))
	}
	if !strings.Contains(logs.String(), "pipeline reloaded") { // Run returned: no writer left
		t.Errorf("no reload logged:\n%s", logs.String())
	}
}

func TestReloadWarnsWhenTracingOrMetricsChange(t *testing.T) {
	parse := func(extra string) *dsl.Config {
		c, err := dsl.Parse("p.yaml", []byte("source: {generate: {count: 1}}\nsink: {drop: {}}\n"+extra), nil)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	first := parse("tracing: {exporter: stdout, sample_ratio: 0.5}\n")
	for _, c := range []struct {
		name, next string
		want       []string
	}{
		{"same", "tracing: {exporter: stdout, sample_ratio: 0.5}\n", nil},
		{"ratio", "tracing: {exporter: stdout, sample_ratio: 0.1}\n", []string{"tracing section changed"}},
		{"removed", "", []string{"tracing section changed"}},
		{"metrics", "tracing: {exporter: stdout, sample_ratio: 0.5}\nmetrics: {http: 127.0.0.1:9464}\n", []string{"metrics section changed"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			warnRestartOnly(slog.New(slog.NewTextHandler(&buf, nil)), first, parse(c.next))
			lines := strings.Count(buf.String(), "\n")
			if lines != len(c.want) {
				t.Errorf("logged %d lines, want %d:\n%s", lines, len(c.want), buf.String())
			}
			for _, w := range c.want {
				if !strings.Contains(buf.String(), w) {
					t.Errorf("log %q lacks %q", buf.String(), w)
				}
			}
		})
	}
}
