//go:build soak

package soak

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/dsl"
	"github.com/pipe-dsl/pipe/pipeline"
)

// pipelineYAML is the soaked pipeline: the source is replaced by a counting
// source, the dead-letter sink by a counting sink, and the chaos sink
// appends what it accepts to a FIFO (ACCEPTED) whose lines are counted. One
// message in 500 is not JSON (dead-lettered by the filter); one in 100
// repeats the previous id (dropped by the dedupe); the router splits big
// orders onto their own branch, which fans in again at the throttle; the
// chaos sink fails 20% of batch writes, which the retry mostly absorbs and
// the breaker sometimes trips on.
const pipelineYAML = `
name: soak
drain_timeout: 30s
sources:
  in: {stdin: {}}
stages:
  keep:
    filter: msg.level != "debug"
    inputs: [in]
  uniq:
    dedupe: {key: string(msg.id), ttl: 2s, max_keys: 50000}
    inputs: [keep]
  split:
    route:
      cases:
        - {name: big, when: 'msg.amount >= 1000.0'}
    inputs: [uniq]
  reshape:
    map: '{"id": msg.id, "customer": msg.customer, "cents": int(msg.amount * 100.0), "tags": msg.tags.map(t, t + "-x")}'
    inputs: [split.default]
  reshape_big:
    map: '{"id": msg.id, "customer": msg.customer, "cents": int(msg.amount * 100.0), "big": true}'
    inputs: [split.big]
  limit:
    throttle: {rate: 20000, burst: 200, on_limit: block}
    inputs: [reshape, reshape_big]
  group:
    batch: {size: 50, max_wait: 20ms, max_in_flight: 16}
    inputs: [limit]
sinks:
  out:
    chaos: {fail_rate: 0.2, status: 503, seed: 7, path: ACCEPTED}
    workers: 8
    retry: {max_attempts: 3, base_delay: 1ms, max_delay: 5ms, jitter: full}
    breaker: {failure_threshold: 6, recovery_timeout: 50ms, on_open: block}
    inputs: [group]
dead_letter: {drop: {}}
`

func TestSoak(t *testing.T) {
	d := 60 * time.Second
	if s := os.Getenv("SOAK"); s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			t.Fatalf("SOAK=%q: %v", s, err)
		}
	}
	src := &countingSource{}
	dlq := &countingSink{}
	fifo := filepath.Join(t.TempDir(), "accepted")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	accepted := make(chan int64, 1)
	go func() { accepted <- countLines(t, fifo) }()
	cfg, err := dsl.Parse("soak.yaml", []byte(strings.ReplaceAll(pipelineYAML, "ACCEPTED", fifo)), nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := dsl.Compile(cfg, &dsl.CompileOptions{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Replace: func(n *dsl.Node) (any, bool) {
			switch {
			case n.Role == pipeline.RoleSource:
				return src, true
			case n == cfg.DeadLetter:
				return dlq, true
			}
			return nil, false
		},
	})
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var samples []sample
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				samples = append(samples, sample{rss: rss(t), goroutines: runtime.NumGoroutine()})
			}
		}
	})
	start := time.Now()
	runErr := c.Run(ctx)
	elapsed := time.Since(start)
	wg.Wait()
	if runErr != nil {
		t.Fatalf("Run: %v", runErr)
	}

	// The sink closed the FIFO when Run returned; if it never opened it,
	// open it once for writing so the reader sees EOF.
	if f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
		f.Close()
	}
	delivered := <-accepted
	var filtered, deduped, big, small int64
	for _, s := range c.Stats() {
		switch s.Name {
		case "keep":
			filtered = s.Dropped
		case "uniq":
			deduped = s.Dropped
		case "reshape":
			small = s.In
		case "reshape_big":
			big = s.In
		}
	}
	produced, acked, nacked := src.produced.Load(), src.acked.Load(), src.nacked.Load()
	dead := dlq.n.Load()
	r := report{
		duration: elapsed, produced: produced, delivered: delivered, dead: dead, filtered: filtered, deduped: deduped,
		acked: acked, nacked: nacked, samples: samples,
	}
	r.print(os.Stdout)

	if produced == 0 || delivered == 0 {
		t.Fatalf("produced %d, delivered %d: the pipeline did not run", produced, delivered)
	}
	if refused := src.refused.Load(); acked != produced || nacked != refused {
		t.Errorf("acked %d, nacked %d; want acked = produced = %d, nacked = refused at the stop = %d",
			acked, nacked, produced, refused)
	}
	if delivered+dead+filtered+deduped != produced {
		t.Errorf("delivered %d + dead-lettered %d + filtered %d + deduplicated %d = %d, want produced %d",
			delivered, dead, filtered, deduped, delivered+dead+filtered+deduped, produced)
	}
	if deduped == 0 || big == 0 || small == 0 {
		t.Errorf("deduplicated %d, routed big %d, default %d: want each above 0", deduped, big, small)
	}
	if dead == 0 {
		t.Errorf("nothing dead-lettered: the invalid messages should have been")
	}
	r.checkFlat(t)
}

// sample is one reading of the process.
type sample struct {
	rss        int64 // bytes
	goroutines int
}

// countingSource sends order-like messages until ctx is done, counting
// what it produced and how each was resolved. A message whose Send fails
// at the stop is nacked by the pipeline and counted as refused.
type countingSource struct {
	produced, refused, acked, nacked atomic.Int64
}

func (s *countingSource) Read(ctx context.Context, out pipeline.Outlet) error {
	ack := func(err error) {
		if err != nil {
			s.nacked.Add(1)
		} else {
			s.acked.Add(1)
		}
	}
	levels := [...]string{"info", "error", "warn", "debug", "info", "info", "error", "info", "warn", "debug"}
	for i := 0; ctx.Err() == nil; i++ {
		var body []byte
		id := i
		if i%100 == 51 {
			id = i - 1 // a duplicate, as a broker redelivery makes
		}
		if i%500 == 499 {
			body = fmt.Appendf(nil, "not json %d", i)
		} else {
			body = fmt.Appendf(nil, `{"id":%d,"level":%q,"customer":"c-%d","amount":%g,"tags":["a","b%d"]}`,
				id, levels[id%len(levels)], id%1000, float64(id%10000)*0.25, id%7)
		}
		if err := out.Send(ctx, pipeline.NewMessage(body, ack)); err != nil {
			s.refused.Add(1)
			return nil
		}
		s.produced.Add(1)
	}
	return nil
}

// countingSink counts dead letters, batch members one by one.
type countingSink struct{ n atomic.Int64 }

func (s *countingSink) Write(_ context.Context, m *pipeline.Message) error {
	if b := m.Batch(); b != nil {
		s.n.Add(int64(len(b)))
		return nil
	}
	s.n.Add(1)
	return nil
}

// countLines counts the lines written to the FIFO at path until its writer
// closes it.
func countLines(t *testing.T, path string) int64 {
	f, err := os.Open(path) // blocks until the sink opens it
	if err != nil {
		t.Error(err)
		return -1
	}
	defer f.Close()
	var n int64
	buf := make([]byte, 64<<10)
	for {
		k, err := f.Read(buf)
		n += int64(bytes.Count(buf[:k], []byte{'\n'}))
		if err != nil {
			return n
		}
	}
}

// rss reads VmRSS from /proc/self/status.
func rss(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatalf("read /proc/self/status: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) >= 2 && string(f[0]) == "VmRSS:" {
			kb, err := strconv.ParseInt(string(f[1]), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", f[1], err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}
