package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	xrate "golang.org/x/time/rate"
)

// records decodes JSON log lines.
func records(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if l == "" {
			continue
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("not a JSON log line: %q", l)
		}
		out = append(out, r)
	}
	return out
}

// Given pipe's JSON logger, what go-redis, OpenTelemetry and the standard
// log package log on their own arrives as JSON records of that logger.
func TestLibrariesLogThroughTheRunsLogger(t *testing.T) {
	var buf bytes.Buffer
	restore := routeLibraryLogs(slog.New(slog.NewJSONHandler(&buf, nil)))
	log.Print("from the log package")
	otel.Handle(errors.New("exporter unreachable"))
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_ = rdb.Ping(ctx).Err()
	cancel()
	_ = rdb.Close()
	restore()
	var after bytes.Buffer
	log.SetOutput(&after)
	log.Print("after restore: not captured")
	log.SetOutput(os.Stderr)

	libs := map[string]string{}
	for _, r := range records(t, &buf) {
		lib, _ := r["lib"].(string)
		msg, _ := r["msg"].(string)
		libs[lib] = msg
	}
	for lib, want := range map[string]string{"log": "from the log package", "otel": "opentelemetry: exporter unreachable", "go-redis": "dial"} {
		if !strings.Contains(libs[lib], want) {
			t.Errorf("lib %s logged %q, want a JSON record containing %q; got:\n%s", lib, libs[lib], want, buf.String())
		}
	}
	if strings.Contains(buf.String(), "after restore") {
		t.Error("the log package still logs to the run's logger after restore")
	}
}

// A flood of library records is cut to the burst; the next record that
// passes says how many were suppressed.
func TestLibraryLogsAreRateLimited(t *testing.T) {
	var buf bytes.Buffer
	h := &limitedHandler{lim: xrate.NewLimiter(xrate.Every(time.Hour), 3)}
	h.target.Store(&handlerBox{slog.NewJSONHandler(&buf, nil)})
	l := slog.New(h)
	for range 100 {
		l.Warn("flood")
	}
	if n := len(records(t, &buf)); n != 3 {
		t.Fatalf("%d records passed, want the burst of 3", n)
	}
	h.lim.SetLimit(xrate.Inf)
	l.Warn("after")
	rs := records(t, &buf)
	if last := rs[len(rs)-1]; last["msg"] != "after" || last["suppressed"] != float64(97) {
		t.Errorf("last record = %v, want msg after with suppressed 97", last)
	}
}

// --quiet leaves out the "pipeline started" line too; the stdout trace
// exporter writes to stderr, so a stdout sink's output stays messages only.
func TestQuietRunAndStdoutSpansStayOffStdout(t *testing.T) {
	file := writeFile(t, "spans.yaml", `
name: spans
source: {generate: {count: 3, message: '{"id": seq}'}}
sink: {stdout: {}}
tracing: {exporter: stdout}
`)
	if testing.Short() {
		t.Skip("builds the CLI")
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(buildPipe(t), "run", "--quiet", "--log-format", "json", file)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("pipe run: %v; stderr:\n%s", err, stderr.String())
	}
	if stdout.String() != "{\"id\":1}\n{\"id\":2}\n{\"id\":3}\n" {
		t.Errorf("stdout = %q, want the 3 messages only", stdout.String())
	}
	if strings.Contains(stderr.String(), "pipeline started") {
		t.Errorf("--quiet logged the start:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "SpanContext") {
		t.Errorf("stderr has no spans:\n%s", stderr.String())
	}
}
