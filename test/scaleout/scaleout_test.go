//go:build scaleout

// Package scaleout runs several `pipe run` processes on one JetStream
// durable consumer and on one Redis consumer group, kills one with SIGKILL
// mid-stream, and checks that no message is lost: `make scaleout`
// (SCALEOUT_N=10000 make scaleout for a quick run).
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

	"github.com/pipe-dsl/pipe/internal/servicetest"
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

func TestMain(m *testing.M) { servicetest.RunWithPipe(m, &pipeBin) }

func TestScaleoutJetStream(t *testing.T) {
	scaleout(t, func(t *testing.T) broker { return newJetStream(t) })
}

func TestScaleoutRedis(t *testing.T) {
	scaleout(t, func(t *testing.T) broker { return newRedisStream(t) })
}

// scaleout measures a copy pipeline (stream -> file), which on a small
// machine is bound by the CPU the processes share with the broker, and a
// durable one (fsync per message), bound by each process's own sink. Each
// compares 1 and 2 processes side by side: both groups run at the same
// time, each on its own stream, so they share whatever load the machine
// has, and the ratio of what they wrote while both ran is reported, not
// asserted (on a loaded 2-core machine it says little). Then it kills one of
// three processes mid-stream. What is asserted is what pipe guarantees: no
// message lost, no torn line but in the killed process's file. Duplicates
// are at-least-once redeliveries (a message held past ack_wait or min_idle
// under load, or unacked by the killed process) and are reported.
func scaleout(t *testing.T, newBroker func(*testing.T) broker) {
	n := messages()
	t.Logf("%d messages per run; %d CPUs; load average %s", n, runtime.NumCPU(), loadavg())
	for _, w := range []struct {
		name string
		sync bool
	}{{"copy", false}, {"durable (fsync per message)", true}} {
		one, two := newBroker(t), newBroker(t)
		one.publish(t, 0, n)
		two.publish(t, 0, n)
		g1, g2 := start(t, one, 1, w.sync), start(t, two, 2, w.sync)
		both := waitFirst(t, n, g1, g2)
		w1, w2 := g1.written(), g2.written()
		waitDone(t, n, g1)
		waitDone(t, n, g2)
		r1, r2 := g1.check(t, n, -1), g2.check(t, n, -1)
		t.Logf("%s, side by side for %.1fs: 1 process %.0f msgs/s, 2 processes %.0f msgs/s: ratio x%.2f (duplicates %d, %d; load average %s)",
			w.name, both.Seconds(), float64(w1)/both.Seconds(), float64(w2)/both.Seconds(), float64(w2)/max(float64(w1), 1),
			r1.dups, r2.dups, loadavg())
	}
	k := killMidStream(t, newBroker(t), n, 3)
	t.Logf("copy, 3 processes, one killed with SIGKILL after %d of %d messages were written (%d by it): lost %d, duplicates %d, torn lines %d",
		k.writtenAtKill, n, k.killedAt, k.lost, k.dups, k.torn)
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
	lost, dups, torn        int
	killedAt, writtenAtKill int
}

// group is procs `pipe run` processes consuming one broker, each copying
// into a file of its own.
type group struct {
	b     broker
	cmds  []*exec.Cmd
	outs  []string
	start time.Time
}

// start starts procs pipe processes on b.
func start(t *testing.T, b broker, procs int, sync bool) *group {
	t.Helper()
	dir := t.TempDir()
	g := &group{b: b}
	for i := range procs {
		out := filepath.Join(dir, fmt.Sprintf("out-%d.ndjson", i))
		file := filepath.Join(dir, fmt.Sprintf("p%d.yaml", i))
		yaml := fmt.Sprintf("name: scaleout\nsource:\n  %s\nsink:\n  file: {path: %q, sync: %t}\n", b.yaml(), out, sync)
		if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(pipeBin, "run", "--quiet", "--log-level", "warn", file)
		cmd.Stderr = os.Stderr
		g.cmds, g.outs = append(g.cmds, cmd), append(g.outs, out)
	}
	t.Cleanup(func() {
		for _, c := range g.cmds {
			if c.Process != nil && c.ProcessState == nil {
				_ = c.Process.Kill()
				_ = c.Wait()
			}
		}
	})
	g.start = time.Now()
	for _, c := range g.cmds {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	return g
}

// written is the number of lines in the group's files.
func (g *group) written() int {
	c := 0
	for _, out := range g.outs {
		c += lines(out)
	}
	return c
}

// poll calls until every 10ms until it returns true, failing the test after
// 5 minutes.
func poll(t *testing.T, what string, until func() bool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(5 * time.Minute)
	for !until() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("%s: not within 5m", what)
		}
	}
}

// waitFirst waits until one of the groups has every message acked and
// returns how long that took.
func waitFirst(t *testing.T, n int, gs ...*group) time.Duration {
	t.Helper()
	poll(t, fmt.Sprintf("%d messages", n), func() bool {
		for _, g := range gs {
			if g.b.done(t) {
				return true
			}
		}
		return false
	})
	return time.Since(gs[0].start)
}

func waitDone(t *testing.T, n int, g *group) {
	t.Helper()
	poll(t, fmt.Sprintf("%d processes acking %d messages", len(g.cmds), n), func() bool { return g.b.done(t) })
}

// killMidStream publishes the first half of the input, starts procs
// processes, and once a quarter of the input is written kills the process
// that wrote the most with SIGKILL; only then does it publish the second
// half. The kill therefore lands mid-stream by construction: after a
// measured share of the input, before the rest exists.
func killMidStream(t *testing.T, b broker, n, procs int) result {
	t.Helper()
	b.publish(t, 0, n/2)
	g := start(t, b, procs, false)
	var res result
	poll(t, "a quarter of the input written", func() bool {
		res.writtenAtKill = g.written()
		return res.writtenAtKill >= n/4
	})
	victim := 0
	for i, out := range g.outs {
		if lines(out) > lines(g.outs[victim]) {
			victim = i
		}
	}
	if err := g.cmds[victim].Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = g.cmds[victim].Wait()
	res.killedAt = lines(g.outs[victim])
	b.publish(t, n/2, n)
	waitDone(t, n, g)
	r := g.check(t, n, victim)
	r.killedAt, r.writtenAtKill = res.killedAt, res.writtenAtKill
	return r
}

// check stops the processes still running with SIGTERM, which must exit 0,
// and checks the files: every message written at least once, and no torn
// line except at most one in the file of process killed (-1: none).
func (g *group) check(t *testing.T, n, killed int) result {
	t.Helper()
	for _, c := range g.cmds {
		if c.ProcessState != nil {
			continue
		}
		_ = c.Process.Signal(syscall.SIGTERM)
		if err := c.Wait(); err != nil {
			t.Errorf("pipe run after SIGTERM: %v", err)
		}
	}
	var res result
	seen := make([]int, n)
	for i, out := range g.outs {
		torn := read(t, out, seen)
		res.torn += torn
		if torn > 1 || torn == 1 && i != killed {
			t.Errorf("%s: %d torn lines; only a process killed mid-write may leave one", out, torn)
		}
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
