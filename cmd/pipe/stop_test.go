package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Given `pipe run` reading a standard input that stays open, with a partial
// batch waiting for a max_wait of an hour, when SIGTERM comes, then the
// batch is flushed at once and pipe exits 0 (the drain bound is an hour
// too, so only a prompt stop can pass).
func TestSIGTERMStopsStdinAndFlushesThePartialBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI")
	}
	bin := buildPipe(t)
	out := filepath.Join(t.TempDir(), "batches.ndjson")
	file := writeFile(t, "stdin.yaml", `
name: stdin
sources:
  in: {stdin: {}}
stages:
  batch: {inputs: [in], batch: {size: 100, max_wait: 1h}}
sinks:
  echo: {inputs: [in], stdout: {}}
  store: {inputs: [batch], file: {path: `+out+`}}
`)
	var fds [2]int
	if err := syscall.Pipe(fds[:]); err != nil { // blocking, as a shell's pipe
		t.Fatal(err)
	}
	stdinR, stdinW := os.NewFile(uintptr(fds[0]), "stdin"), os.NewFile(uintptr(fds[1]), "writer")
	defer stdinW.Close()
	cmd := exec.Command(bin, "run", "--quiet", "--drain-timeout", "1h", file)
	cmd.Stdin = stdinR
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stdinR.Close()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	if _, err := stdinW.WriteString("{\"id\":1}\n{\"id\":2}\n{\"id\":3}\n"); err != nil {
		t.Fatal(err)
	}
	// Once all three are echoed, the source has read them and the batch
	// holds them.
	sc := bufio.NewScanner(stdout)
	for range 3 {
		if !sc.Scan() {
			t.Fatalf("stdout ended early: %v", sc.Err())
		}
	}
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
	}
	if code := wait(t, cmd); code != exitOK {
		t.Fatalf("exit %d, want %d", code, exitOK)
	}
	t.Logf("exited %v after SIGTERM", time.Since(start).Round(time.Millisecond))
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(got), "\n"); n != 3 {
		t.Errorf("the batch wrote %d lines, want 3:\n%s", n, got)
	}
}

// Given an endless source held back by a slow stage, when SIGTERM stops
// it, then the messages whose send the stop refused are nacked back to the
// source, and that is no failure: exit 0.
func TestSIGTERMOnABackpressuredEndlessRunExitsZero(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI")
	}
	file := writeFile(t, "endless.yaml", `
name: endless
buffer: 1
source: {generate: {count: 0, message: '{"id": seq}'}}
stages: [{throttle: {rate: 20, burst: 1}}]
sink: {stdout: {}}
`)
	cmd := exec.Command(buildPipe(t), "run", "--log-format", "json", file)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	sc := bufio.NewScanner(stdout)
	for range 5 { // by now the source waits on the full buffers
		if !sc.Scan() {
			t.Fatalf("stdout ended early: %v", sc.Err())
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
	}
	if code := wait(t, cmd); code != exitOK {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitOK, stderr.String())
	}
	// generate hands on up to 16 messages at a time (one SendAll): the
	// stop refuses the rest of the burst it was sending.
	m := regexp.MustCompile(`not delivered \(nacked\): abandoned (\d+)`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("the summary does not report the refused send:\n%s", stderr.String())
	}
	if n, _ := strconv.Atoi(m[1]); n < 1 || n > 16 {
		t.Errorf("the stop refused %d messages, want 1 to 16 (one burst):\n%s", n, stderr.String())
	}
}
