package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) {
		if binDir != "" {
			_ = os.RemoveAll(binDir)
		}
	}))
}

func writeFile(t *testing.T, name, src string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(f, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// The exit codes are a contract scripts rely on: 0 success, 1 run-time
// failure, 2 invalid configuration or usage.
func TestExitCodes(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out.ndjson")
	good := writeFile(t, "good.yaml", `
name: good
source: {generate: {count: 5, message: '{"id": seq}'}}
stages: [{filter: 'msg.id % 2 == 1'}]
sink: {file: {path: `+out+`}}
`)
	bad := writeFile(t, "bad.yaml", "name: bad\nsource: {stdin: {}}\nstages:\n  - fliter: x\nsink: {stdout: {}}\n")
	failing := writeFile(t, "failing.yaml", `
name: failing
source: {file: {path: /nonexistent/input.ndjson}}
sink: {drop: {}}
`)
	for _, tc := range []struct {
		name       string
		args       []string
		code       int
		wantStderr string
	}{
		{"no command", nil, exitConfig, "Usage:"},
		{"unknown command", []string{"rnu"}, exitConfig, `unknown command "rnu"`},
		{"run without a file", []string{"run"}, exitConfig, "usage: pipe run"},
		{"run unknown flag", []string{"run", "--nope", good}, exitConfig, "flag provided but not defined"},
		{"run missing file", []string{"run", "/nonexistent.yaml"}, exitConfig, "/nonexistent.yaml"},
		{"validate good", []string{"validate", good}, exitOK, ""},
		{"validate bad", []string{"validate", good, bad}, exitConfig, `bad.yaml:4:5: unknown stage kind or key "fliter"; did you mean "filter"?`},
		{"run bad", []string{"run", bad}, exitConfig, "bad.yaml:4:5"},
		{"run good", []string{"run", "--quiet", good}, exitOK, ""},
		{"run failing", []string{"run", "--quiet", failing}, exitRuntime, "/nonexistent/input.ndjson"},
		{"version", []string{"version"}, exitOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCLI(tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, stderr)
			}
			if !strings.Contains(stderr, tc.wantStderr) {
				t.Errorf("stderr does not contain %q:\n%s", tc.wantStderr, stderr)
			}
		})
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "{\"id\":1}\n{\"id\":3}\n{\"id\":5}\n" {
		t.Errorf("run good wrote %q", got)
	}
}

var (
	binDir   string
	buildBin = sync.OnceValues(func() (string, error) {
		var err error
		if binDir, err = os.MkdirTemp("", "pipe-test-"); err != nil {
			return "", err
		}
		bin := filepath.Join(binDir, "pipe")
		if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build: %v\n%s", err, out)
		}
		return bin, nil
	})
)

// buildPipe builds the CLI once per test binary run.
func buildPipe(t *testing.T) string {
	t.Helper()
	bin, err := buildBin()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// startStuck runs a pipeline whose file sink opens a FIFO that nobody
// opens for reading: the open blocks in the kernel, ignoring cancellation,
// so the pipeline can never drain. It returns once the open is blocked.
func startStuck(t *testing.T, bin string, args ...string) (*exec.Cmd, <-chan string) {
	t.Helper()
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	file := writeFile(t, "stuck.yaml", `
name: stuck
source: {generate: {count: 0, message: '{"id": seq}'}}
sink: {file: {path: `+fifo+`}}
`)
	cmd := exec.Command(bin, append(append([]string{"run", "--log-format", "json"}, args...), file)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	lines := make(chan string)
	stopped := make(chan struct{})
	t.Cleanup(func() { close(stopped) })
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-stopped:
				return
			}
		}
	}()
	waitLog(t, lines, "pipeline started")
	giveUp := time.Now().Add(time.Minute)
	for !blockedInFIFOOpen(cmd.Process.Pid) {
		if time.Now().After(giveUp) {
			t.Fatal("the sink never blocked opening the FIFO")
		}
		runtime.Gosched()
	}
	return cmd, lines
}

// blockedInFIFOOpen reports whether a thread of process pid waits in the
// kernel for the other end of a FIFO.
func blockedInFIFOOpen(pid int) bool {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/wchan", pid))
	for _, f := range tasks {
		if b, _ := os.ReadFile(f); string(b) == "wait_for_partner" {
			return true
		}
	}
	return false
}

// waitLog reads log lines until one contains s.
func waitLog(t *testing.T, lines <-chan string, s string) {
	t.Helper()
	var seen []string
	for l := range lines {
		if strings.Contains(l, s) {
			return
		}
		seen = append(seen, l)
	}
	t.Fatalf("pipe exited without logging %q; it logged:\n%s", s, strings.Join(seen, "\n"))
}

// wait waits for cmd and returns its exit code; a pipe that does not exit
// within a minute is killed and the test fails.
func wait(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	hung := time.AfterFunc(time.Minute, func() { _ = cmd.Process.Kill() })
	err := cmd.Wait()
	if !hung.Stop() {
		t.Fatal("pipe did not exit within a minute")
	}
	var ee *exec.ExitError
	if err == nil {
		return 0
	}
	if !errors.As(err, &ee) {
		t.Fatalf("wait: %v", err)
	}
	return ee.ExitCode()
}

// SIGTERM starts a drain; when the drain cannot finish, --drain-timeout
// bounds it, what is in flight is reported and the exit code is 1.
func TestSIGTERMDrainsWithinTheDrainTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI")
	}
	bin := buildPipe(t)
	cmd, lines := startStuck(t, bin, "--drain-timeout", "300ms")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitLog(t, lines, "drain timeout: abandoning in-flight messages")
	if code := wait(t, cmd); code != exitRuntime {
		t.Fatalf("exit %d, want %d", code, exitRuntime)
	}
}

// A second SIGINT aborts the drain at once; nothing undelivered is acked.
func TestASecondSIGINTAbortsTheDrain(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI")
	}
	bin := buildPipe(t)
	cmd, lines := startStuck(t, bin, "--drain-timeout", "1h")
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	// Signals sent back to back may merge into one.
	waitLog(t, lines, "draining")
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	waitLog(t, lines, "aborting: in-flight messages are nacked")
	waitLog(t, lines, "aborted by signal: ")
	if code := wait(t, cmd); code != exitRuntime {
		t.Fatalf("exit %d, want %d", code, exitRuntime)
	}
}
