//go:build scaleout

// Package scaleout runs several `pipe run` processes on one JetStream
// durable consumer and on one Redis consumer group, kills one with SIGKILL
// mid-stream, and checks that no message is lost: `make scaleout`.
package scaleout

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// messages is how many messages each run publishes; SCALEOUT_N overrides.
func messages() int {
	if n, err := strconv.Atoi(os.Getenv("SCALEOUT_N")); err == nil && n > 0 {
		return n
	}
	return 100_000
}

// pipeBin is the pipe binary, built once.
var pipeBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "scaleout")
	if err != nil {
		panic(err)
	}
	pipeBin = filepath.Join(dir, "pipe")
	build := exec.Command("go", "build", "-o", pipeBin, "github.com/pipe-dsl/pipe/cmd/pipe")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build pipe:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestScaleoutJetStream(t *testing.T) {
	scaleout(t, func(t *testing.T) broker { return newJetStream(t) })
}

func TestScaleoutRedis(t *testing.T) {
	scaleout(t, func(t *testing.T) broker { return newRedisStream(t) })
}

// scaleout measures a copy pipeline (stream -> file), which on a small
// machine is bound by the CPU the processes share with the broker, and a
// durable one (fsync per message), bound by each process's own sink; it
// asserts the scaling on the second. Then it kills one of three processes.
func scaleout(t *testing.T, newBroker func(*testing.T) broker) {
	n := messages()
	t.Logf("%d messages per run; %d CPUs; load average %s", n, runtime.NumCPU(), loadavg())
	for _, w := range []struct {
		name   string
		sync   bool
		assert bool
	}{{"copy", false, false}, {"durable (fsync per message)", true, true}} {
		one := run(t, newBroker(t), n, 1, w.sync, false)
		two := run(t, newBroker(t), n, 2, w.sync, false)
		t.Logf("%s: 1 process %.0f msgs/s, 2 processes %.0f msgs/s (x%.2f)", w.name, one.rate, two.rate, two.rate/one.rate)
		if w.assert && two.rate <= one.rate {
			t.Errorf("%s: 2 processes (%.0f msgs/s) are not faster than 1 (%.0f msgs/s)", w.name, two.rate, one.rate)
		}
	}
	k := run(t, newBroker(t), n, 3, false, true)
	t.Logf("copy, 3 processes, one killed with SIGKILL after writing %d messages: lost %d, duplicates %d, torn lines %d, %.0f msgs/s",
		k.killedAt, k.lost, k.dups, k.torn, k.rate)
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

type result struct {
	rate           float64
	lost, dups     int
	torn, killedAt int
}

// run publishes n messages, starts procs pipe processes that copy them into
// one file each, optionally kills the first with SIGKILL a third of the way
// in, waits until the broker has every message acked and checks the files.
func run(t *testing.T, b broker, n, procs int, sync, kill bool) result {
	t.Helper()
	dir := t.TempDir()
	b.publish(t, n)
	var cmds []*exec.Cmd
	var outs []string
	for i := range procs {
		out := filepath.Join(dir, fmt.Sprintf("out-%d.ndjson", i))
		file := filepath.Join(dir, fmt.Sprintf("p%d.yaml", i))
		yaml := fmt.Sprintf("name: scaleout\nsource:\n  %s\nsink:\n  file: {path: %q, sync: %t}\n", b.yaml(), out, sync)
		if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(pipeBin, "run", "--quiet", "--log-level", "warn", file)
		cmd.Stderr = os.Stderr
		cmds, outs = append(cmds, cmd), append(outs, out)
	}
	start := time.Now()
	for _, c := range cmds {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, c := range cmds {
			if c.ProcessState == nil {
				_ = c.Process.Kill()
				_ = c.Wait()
			}
		}
	})
	var res result
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(5 * time.Minute)
	killed := !kill
	for !b.done(t) {
		if !killed {
			if c := lines(outs[0]); c >= n/(3*procs) {
				if err := cmds[0].Process.Kill(); err != nil {
					t.Fatal(err)
				}
				_ = cmds[0].Wait()
				res.killedAt, killed = c, true
			}
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("%d processes did not finish %d messages in 5m", procs, n)
		}
	}
	res.rate = float64(n) / time.Since(start).Seconds()
	for _, c := range cmds {
		if c.ProcessState != nil {
			continue
		}
		_ = c.Process.Signal(syscall.SIGTERM)
		if err := c.Wait(); err != nil {
			t.Errorf("pipe run after SIGTERM: %v", err)
		}
	}
	seen := make([]int, n)
	for _, out := range outs {
		res.torn += read(t, out, seen)
	}
	for id, c := range seen {
		switch {
		case c == 0:
			res.lost++
			if res.lost <= 10 {
				t.Errorf("message %d never reached a file", id)
			}
		case c > 1:
			res.dups += c - 1
		}
	}
	if res.lost > 0 {
		t.Errorf("%d of %d messages lost", res.lost, n)
	}
	if !kill && res.dups > 0 {
		t.Errorf("%d duplicates without a failure", res.dups)
	}
	return res
}

// lines counts the newlines in file.
func lines(file string) int {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	c := 0
	for _, x := range b {
		if x == '\n' {
			c++
		}
	}
	return c
}

// read counts each message id in file into seen and returns how many lines
// did not parse (a write cut short by SIGKILL).
func read(t *testing.T, file string, seen []int) (torn int) {
	f, err := os.Open(file)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m struct{ ID *int }
		if json.Unmarshal(sc.Bytes(), &m) != nil || m.ID == nil || *m.ID < 0 || *m.ID >= len(seen) {
			torn++
			continue
		}
		seen[*m.ID]++
	}
	return torn
}
