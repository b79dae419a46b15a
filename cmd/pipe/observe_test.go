package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// pipe run --http serves metrics and probes while the pipeline runs, and a
// SIGTERM still drains and exits 0.
func TestRunServesMetricsAndProbesOnHTTP(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI")
	}
	bin := buildPipe(t)
	file := writeFile(t, "live.yaml", `
name: live
source: {generate: {count: 0, interval: 1ms, message: '{"id": seq}'}}
stages:
  - filter: msg.id % 2 == 0
sink: {drop: {}}
`)
	cmd := exec.Command(bin, "run", "--log-format", "json", "--http", "127.0.0.1:0", file)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	sc := bufio.NewScanner(stderr)
	addr := ""
	for addr == "" && sc.Scan() {
		var rec struct{ Msg, Addr string }
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "serving metrics" {
			addr = rec.Addr
		}
	}
	if addr == "" {
		t.Fatal(`pipe run did not log "serving metrics" with its address`)
	}
	for sc.Scan() && !strings.Contains(sc.Text(), "pipeline started") {
	}
	go io.Copy(io.Discard, stderr)

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz while running = %d, want 200", code)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz = %d, want 200", code)
	}
	code, body := get("/metrics")
	for _, want := range []string{
		`pipe_node_messages_out_total{kind="generate",node="source",pipeline="live",role="source"}`,
		`pipe_node_messages_dropped_total{kind="filter",node="filter",pipeline="live",role="stage"}`,
		`pipe_node_queue_capacity{kind="drop",node="sink",pipeline="live",role="sink"} 128`,
	} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics (%d) lacks %s", code, want)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := wait(t, cmd); code != exitOK {
		t.Errorf("exit %d after SIGTERM, want %d", code, exitOK)
	}
}
