// Package conntest holds what the connector tests share: the skip-or-fail
// rule for services that are down, and a pipeline harness with a recording
// sink. Only tests import it; it does not import dsl, so a connector's
// internal tests may use it too (see dsltest for compiling YAML).
package conntest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/pipeline"
)

// Unavailable ends a test whose service (e.g. "Redis on 127.0.0.1:6379")
// could not be reached: it skips, or fails when PIPE_REQUIRE_SERVICES=1
// (as in CI).
func Unavailable(t testing.TB, service string, err error) {
	t.Helper()
	if os.Getenv("PIPE_REQUIRE_SERVICES") == "1" {
		t.Fatalf("%s is required (PIPE_REQUIRE_SERVICES=1): %v", service, err)
	}
	t.Skipf("%s is not reachable: %v (PIPE_REQUIRE_SERVICES=1 makes this a failure)", service, err)
}

// Bodies returns n JSON bodies {"prefix": i}.
func Bodies(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(`{"%s":%d}`, prefix, i)
	}
	return out
}

// Start runs p until the returned stop is called (or the test ends); stop
// returns Run's error.
func Start(t testing.TB, p interface{ Run(context.Context) error }) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("pipeline did not stop")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// Recorder is a sink that passes every written message (every member of a
// batch) to C, after Fail (if set) had its say.
type Recorder struct {
	C    chan *pipeline.Message
	Fail func(m *pipeline.Message) error
	// Hold, if set, makes every write wait for a value on it, or fail
	// when ctx ends; Entered, if set, gets a value as each write starts.
	Hold, Entered chan struct{}
}

// NewRecorder returns a Recorder whose C holds 100,000 messages.
func NewRecorder() *Recorder { return &Recorder{C: make(chan *pipeline.Message, 100000)} }

func (r *Recorder) Write(ctx context.Context, m *pipeline.Message) error {
	if r.Entered != nil {
		select {
		case r.Entered <- struct{}{}:
		default:
		}
	}
	if r.Hold != nil {
		select {
		case <-r.Hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if r.Fail != nil {
		if err := r.Fail(m); err != nil {
			return err
		}
	}
	if b := m.Batch(); b != nil {
		for _, x := range b {
			r.C <- x
		}
		return nil
	}
	r.C <- m
	return nil
}

// Collect receives n messages from c, failing the test after timeout.
func Collect(t testing.TB, c <-chan *pipeline.Message, n int, timeout time.Duration) []*pipeline.Message {
	t.Helper()
	out := make([]*pipeline.Message, 0, n)
	deadline := time.After(timeout)
	for len(out) < n {
		select {
		case m := <-c:
			out = append(out, m)
		case <-deadline:
			t.Fatalf("received %d of %d messages in %v", len(out), n, timeout)
		}
	}
	return out
}

// Collector is a sink that records distinct bodies and closes Full when it
// has seen Want of them. Fail, if set, decides per message whether to fail;
// attempt counts the writes of that body so far.
type Collector struct {
	mu    sync.Mutex
	Seen  map[string]int               // writes per body
	Metas map[string]map[string]string // meta of each body's first success
	Want  int
	Full  chan struct{}
	Fail  func(m *pipeline.Message, attempt int) error
}

// NewCollector returns a Collector waiting for want distinct bodies.
func NewCollector(want int) *Collector {
	return &Collector{Seen: map[string]int{}, Metas: map[string]map[string]string{}, Want: want, Full: make(chan struct{})}
}

func (c *Collector) Write(_ context.Context, m *pipeline.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	body := string(m.Body)
	c.Seen[body]++
	if c.Fail != nil {
		if err := c.Fail(m, c.Seen[body]); err != nil {
			return err
		}
	}
	if _, ok := c.Metas[body]; !ok {
		c.Metas[body] = m.Meta
		if len(c.Metas) == c.Want {
			close(c.Full)
		}
	}
	return nil
}

// Delivered returns the distinct bodies written successfully, sorted.
func (c *Collector) Delivered() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.Metas))
	for b := range c.Metas {
		out = append(out, b)
	}
	slices.Sort(out)
	return out
}

// Envelope decodes the dead-letter envelope m carries, or fails the test.
func Envelope(t testing.TB, m *pipeline.Message) pipeline.DeadLetter {
	t.Helper()
	var d pipeline.DeadLetter
	if err := json.Unmarshal(m.Body, &d); err != nil {
		t.Fatalf("dead letter %q: %v", m.Body, err)
	}
	return d
}
