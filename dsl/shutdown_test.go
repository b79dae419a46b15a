package dsl_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pipe-dsl/pipe/dsl"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

// Shutdown tests stop a compiled pipeline in each phase a message can wait
// in and check the two-phase stop contract:
//
//   - a soft stop (ctx cancelled) lets what was read finish within
//     drain_timeout, and Run returns nil;
//   - past drain_timeout the hard stop nacks what is left, and Run returns
//     an *pipeline.AbandonedError naming the nodes that held it;
//   - every source message is resolved exactly once, and a message is acked
//     only if the sink or the dead-letter sink accepted it.
//
// The pipelines run on a FakeClock, so "waits a minute" costs nothing.

// holdSource sends its bodies, then holds the pipeline open until the soft
// stop, like a broker consumer with nothing more to read.
type holdSource struct {
	bodies []string
	sent   chan struct{} // closed when every body was sent

	mu     sync.Mutex
	acks   map[int]int   // index -> number of ack calls
	nacks  map[int]error // index -> last nack error
	nnacks map[int]int
}

func newHoldSource(n int) *holdSource {
	s := &holdSource{sent: make(chan struct{}), acks: map[int]int{}, nacks: map[int]error{}, nnacks: map[int]int{}}
	for i := range n {
		s.bodies = append(s.bodies, fmt.Sprintf(`{"i":%d}`, i))
	}
	return s
}

func (s *holdSource) Read(ctx context.Context, out pipeline.Outlet) error {
	for i, b := range s.bodies {
		m := pipeline.NewMessage([]byte(b), func(err error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			if err != nil {
				s.nacks[i] = err
				s.nnacks[i]++
			} else {
				s.acks[i]++
			}
		})
		if err := out.Send(ctx, m); err != nil {
			return nil
		}
	}
	close(s.sent)
	<-ctx.Done()
	return nil
}

// shutdownRun is one pipeline under test.
type shutdownRun struct {
	t      *testing.T
	clock  *pipelinetest.FakeClock
	src    *holdSource
	sink   *pipelinetest.Sink // replaces the sink unless keepSink
	path   string             // where a kept chaos sink appends (OUT in the file)
	dlq    *pipelinetest.Sink
	cancel context.CancelFunc
	kill   func()
	done   chan error
}

// startShutdown compiles file with n source messages and starts it. The
// sink is replaced by a recorder unless keepSink (then OUT in file is a
// path for a chaos sink to append to); the dead-letter sink always is.
func startShutdown(t *testing.T, file string, n int, keepSink bool, setup ...func(*shutdownRun)) *shutdownRun {
	t.Helper()
	r := &shutdownRun{
		t:     t,
		clock: pipelinetest.NewFakeClock(time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)),
		src:   newHoldSource(n),
		sink:  &pipelinetest.Sink{Entered: make(chan struct{}, n)},
		dlq:   &pipelinetest.Sink{Entered: make(chan struct{}, n)},
		done:  make(chan error, 1),
		path:  filepath.Join(t.TempDir(), "out.ndjson"),
	}
	for _, f := range setup {
		f(r)
	}
	file = strings.ReplaceAll(file, "OUT", r.path)
	cfg, err := dsl.Parse("shutdown.yaml", []byte(file), nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := dsl.Compile(cfg, &dsl.CompileOptions{
		Clock:  r.clock,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Replace: func(n *dsl.Node) (any, bool) {
			switch {
			case n.Role == pipeline.RoleSource:
				return r.src, true
			case n == cfg.DeadLetter:
				return r.dlq, true
			case n.Role == pipeline.RoleSink && !keepSink:
				return r.sink, true
			}
			return nil, false
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.kill = cancel, c.Kill
	go func() { r.done <- c.Run(ctx) }()
	<-r.src.sent
	return r
}

// written waits until s has started k writes; a recorder then finishes them
// whatever the pipeline does next.
func written(s *pipelinetest.Sink, k int) {
	for range k {
		<-s.Entered
	}
}

// stop cancels the run (soft stop) once waiting timers are armed, then
// waits for the drain timer.
func (r *shutdownRun) stop(waiting int) {
	r.clock.WaitTimers(waiting)
	r.cancel()
	r.clock.WaitTimers(waiting + 1)
}

// advanceDrain advances the clock by d once the drain timer (due in d) is
// the next to fire; other timers, such as a batch's max_wait, fire later.
func (r *shutdownRun) advanceDrain(d time.Duration) {
	for {
		if next, ok := r.clock.Next(); ok && next <= d {
			break
		}
		runtime.Gosched()
	}
	r.clock.Advance(d)
}

// wait returns Run's error.
func (r *shutdownRun) wait() error {
	r.t.Helper()
	err := <-r.done
	r.cancel()
	return err
}

// checkResolved asserts every source message was acked or nacked exactly
// once, that acked is exactly the set acked, and that each acked message
// reached the sink or the dead-letter sink.
func (r *shutdownRun) checkResolved(acked []int, delivered []string) {
	r.t.Helper()
	r.src.mu.Lock()
	defer r.src.mu.Unlock()
	var got []int
	for i := range r.src.bodies {
		a, n := r.src.acks[i], r.src.nnacks[i]
		switch {
		case a+n == 0:
			r.t.Errorf("message %d was neither acked nor nacked", i)
		case a+n > 1:
			r.t.Errorf("message %d resolved %d times (acks %d, nacks %d)", i, a+n, a, n)
		}
		if a > 0 {
			got = append(got, i)
		}
		if n > 0 && !errors.Is(r.src.nacks[i], pipeline.ErrAbandoned) {
			r.t.Errorf("message %d nacked with %v, want ErrAbandoned", i, r.src.nacks[i])
		}
	}
	if !slices.Equal(got, acked) {
		r.t.Errorf("acked = %v, want %v", got, acked)
	}
	sunk := r.sink.Bodies()
	if b, err := os.ReadFile(r.path); err == nil {
		sunk = strings.Fields(string(b))
	}
	if !slices.Equal(sunk, delivered) {
		r.t.Errorf("sink got %q, want %q", sunk, delivered)
	}
	reached := append(sunk, deadLettered(r.t, r.dlq)...)
	for _, i := range got {
		if !slices.Contains(reached, r.src.bodies[i]) {
			r.t.Errorf("message %d acked but neither delivered nor dead-lettered", i)
		}
	}
}

// deadLettered returns the payloads of the envelopes dlq received.
func deadLettered(t *testing.T, dlq *pipelinetest.Sink) []string {
	t.Helper()
	var out []string
	for _, b := range dlq.Bodies() {
		var d pipeline.DeadLetter
		if err := json.Unmarshal([]byte(b), &d); err != nil {
			t.Fatalf("dead letter %q: %v", b, err)
		}
		out = append(out, string(d.Payload))
	}
	return out
}

// checkAbandoned asserts err is an *AbandonedError with these in-flight
// counts per node.
func checkAbandoned(t *testing.T, err error, want map[string]int) {
	t.Helper()
	var ab *pipeline.AbandonedError
	if !errors.As(err, &ab) {
		t.Fatalf("Run = %v, want *pipeline.AbandonedError", err)
	}
	if !maps.Equal(ab.InFlight, want) {
		t.Errorf("in flight = %v, want %v", ab.InFlight, want)
	}
}

// checkDeadLettered asserts how many envelopes the dead-letter sink got.
func (r *shutdownRun) checkDeadLettered(want int) {
	r.t.Helper()
	if n := len(r.dlq.Bodies()); n != want {
		r.t.Errorf("dead-lettered %d, want %d", n, want)
	}
}

func TestSoftStopLetsABlockedThrottleFinishWithinTheDrainTimeout(t *testing.T) {
	defer goleak.VerifyNone(t)
	// Given a throttle admitting one message a second, three messages read
	r := startShutdown(t, `
name: shutdown
drain_timeout: 10s
source: {stdin: {}}
stages:
  - name: limit
    throttle: {rate: 1, burst: 1, on_limit: block}
sink: {name: out, drop: {}}
`, 3, false)
	// When the soft stop comes while the second waits for a token
	r.stop(1)
	// and the throttle's two seconds pass within the drain timeout
	r.clock.Advance(time.Second)
	r.clock.WaitTimers(2)
	r.clock.Advance(time.Second)
	// Then all three are delivered and acked, and Run reports nothing
	if err := r.wait(); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	r.checkResolved([]int{0, 1, 2}, []string{`{"i":0}`, `{"i":1}`, `{"i":2}`})
}

func TestHardStopNacksMessagesHeldByABlockedThrottle(t *testing.T) {
	defer goleak.VerifyNone(t)
	// Given a throttle admitting one message every 1000s, three messages read
	r := startShutdown(t, `
name: shutdown
drain_timeout: 5s
source: {stdin: {}}
stages:
  - name: limit
    throttle: {rate: 0.001, burst: 1, on_limit: block}
sink: {name: out, drop: {}}
`, 3, false)
	// When the first is written and the soft stop outlasts the drain timeout
	written(r.sink, 1)
	r.stop(1)
	r.clock.Advance(5 * time.Second)
	// Then the first is delivered and acked, the waiting one and the queued
	// one are nacked, and Run names the throttle as holding both
	err := r.wait()
	checkAbandoned(t, err, map[string]int{"limit": 2})
	r.checkResolved([]int{0}, []string{`{"i":0}`})
}

func TestSoftStopLetsARetryBackoffFinishWithinTheDrainTimeout(t *testing.T) {
	defer goleak.VerifyNone(t)
	// Given a sink whose first write fails, retried after 1s
	r := startShutdown(t, `
name: shutdown
drain_timeout: 10s
source: {stdin: {}}
sink:
  name: out
  chaos: {fail_first: 1, status: 503, path: OUT}
  retry: {max_attempts: 3, base_delay: 1s, jitter: none}
dead_letter: {drop: {}}
`, 1, true)
	// When the soft stop comes during the backoff and 1s passes
	r.stop(1)
	r.clock.Advance(time.Second)
	// Then the retry succeeds and the message is acked
	if err := r.wait(); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	r.checkResolved([]int{0}, []string{`{"i":0}`})
	r.checkDeadLettered(0)
}

func TestHardStopInterruptsARetryBackoffAndNacksTheMessage(t *testing.T) {
	defer goleak.VerifyNone(t)
	// Given a sink that always fails, retried after a minute
	r := startShutdown(t, `
name: shutdown
drain_timeout: 5s
source: {stdin: {}}
sink:
  name: out
  chaos: {fail_rate: 1, status: 503, path: OUT}
  retry: {max_attempts: 5, base_delay: 1m, max_delay: 1m, jitter: none}
dead_letter: {drop: {}}
`, 1, true)
	// When the soft stop outlasts the drain timeout during the backoff
	r.stop(1)
	r.clock.Advance(5 * time.Second)
	// Then the backoff is cut short and the message nacked, not
	// dead-lettered: it was not given up on, the pipeline stopped
	err := r.wait()
	checkAbandoned(t, err, map[string]int{"out": 1})
	r.checkResolved(nil, nil)
	r.checkDeadLettered(0)
}

func TestHardStopNacksAMessageHeldByAnOpenBreaker(t *testing.T) {
	defer goleak.VerifyNone(t)
	// Given a breaker that opens on one failure and holds calls while open
	r := startShutdown(t, `
name: shutdown
drain_timeout: 5s
source: {stdin: {}}
sink:
  name: out
  chaos: {fail_first: 1, status: 503, path: OUT}
  breaker: {failure_threshold: 1, recovery_timeout: 1m, on_open: block}
dead_letter: {drop: {}}
`, 2, true)
	// When the first write fails (dead-lettered), the second waits for the
	// breaker, and the soft stop outlasts the drain timeout
	written(r.dlq, 1)
	r.stop(1)
	r.clock.Advance(5 * time.Second)
	// Then the dead-lettered one is acked and the held one nacked
	err := r.wait()
	checkAbandoned(t, err, map[string]int{"out": 1})
	r.checkResolved([]int{0}, nil)
	r.checkDeadLettered(1)
}

func TestSoftStopLetsAnOpenBreakerRecoverWithinTheDrainTimeout(t *testing.T) {
	defer goleak.VerifyNone(t)
	// Given a breaker open for a minute after one failure, a second
	// message waiting for it, and a drain timeout of two minutes
	r := startShutdown(t, `
name: shutdown
drain_timeout: 2m
source: {stdin: {}}
sink:
  name: out
  chaos: {fail_first: 1, status: 503, path: OUT}
  breaker: {failure_threshold: 1, recovery_timeout: 1m, on_open: block}
dead_letter: {drop: {}}
`, 2, true)
	written(r.dlq, 1)
	// When the soft stop comes and the minute passes
	r.stop(1)
	r.clock.Advance(time.Minute)
	// Then the probe succeeds: one dead-lettered, one delivered, both acked
	if err := r.wait(); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	r.checkResolved([]int{0, 1}, []string{`{"i":1}`})
}

func TestHardStopInterruptsASlowWrite(t *testing.T) {
	defer goleak.VerifyNone(t)
	// Given a sink whose writes take a minute, two messages read
	r := startShutdown(t, `
name: shutdown
drain_timeout: 5s
source: {stdin: {}}
sink:
  name: out
  chaos: {latency: 1m, path: OUT}
dead_letter: {drop: {}}
`, 2, true)
	// When the soft stop outlasts the drain timeout during the first write
	r.stop(1)
	r.clock.Advance(5 * time.Second)
	// Then the write is abandoned and both messages are nacked: the one
	// being written and the one queued behind it
	err := r.wait()
	checkAbandoned(t, err, map[string]int{"out": 2})
	r.checkResolved(nil, nil)
	r.checkDeadLettered(0)
}

// Kill alone does not stop a source that waits on ctx: Run's soft-stop
// context is the caller's. The CLI cancels first (first signal) and kills
// on the second, as here.
func TestKillNacksEverythingInFlightWithoutWaitingForTheDrainTimeout(t *testing.T) {
	defer goleak.VerifyNone(t)
	// Given a throttle holding two of three messages
	r := startShutdown(t, `
name: shutdown
drain_timeout: 1h
source: {stdin: {}}
stages:
  - name: limit
    throttle: {rate: 0.001, burst: 1, on_limit: block}
sink: {name: out, drop: {}}
`, 3, false)
	written(r.sink, 1)
	r.clock.WaitTimers(1)
	// When the soft stop is followed at once by Kill
	r.cancel()
	r.kill()
	// Then the held messages are nacked without waiting for drain_timeout
	err := r.wait()
	checkAbandoned(t, err, map[string]int{"limit": 2})
	r.checkResolved([]int{0}, []string{`{"i":0}`})
}

func TestSoftStopFlushesAPartialBatchAtOnce(t *testing.T) {
	defer goleak.VerifyNone(t)
	// Given a batch of up to 10 that waits a minute, holding three messages
	r := startShutdown(t, `
name: shutdown
drain_timeout: 5s
source: {stdin: {}}
stages:
  - name: group
    batch: {size: 10, max_wait: 1m}
sink: {name: out, drop: {}}
`, 3, false)
	// When the soft stop comes, and no time passes
	r.cancel()
	// Then the three go out in one write, without waiting for max_wait or
	// the drain timeout, and are acked
	if err := r.wait(); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if n := r.sink.Writes(); n != 1 {
		t.Errorf("sink writes = %d, want 1 batch", n)
	}
	r.checkResolved([]int{0, 1, 2}, []string{`{"i":0}`, `{"i":1}`, `{"i":2}`})
}

func TestHardStopNacksEveryMemberOfABatchBeingWritten(t *testing.T) {
	defer goleak.VerifyNone(t)
	// Given a batch flushed at the soft stop into a sink that never finishes
	r := startShutdown(t, `
name: shutdown
drain_timeout: 5s
source: {stdin: {}}
stages:
  - name: group
    batch: {size: 10, max_wait: 1m}
sink: {name: out, drop: {}}
`, 3, false, func(r *shutdownRun) { r.sink.Gate = make(chan struct{}) })
	// When the write has started and the drain timeout passes
	r.cancel()
	written(r.sink, 1)
	r.advanceDrain(5 * time.Second)
	// Then the batch is abandoned at the sink and each member nacked
	err := r.wait()
	checkAbandoned(t, err, map[string]int{"out": 1}) // one batch
	r.checkResolved(nil, nil)
}
