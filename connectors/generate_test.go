package connectors

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/expr"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

// timedOutlet records the clock's time at each Send; onSend, if set, runs
// inside Send (a slow downstream).
type timedOutlet struct {
	clock  *pipelinetest.FakeClock
	onSend func(n int)
	mu     sync.Mutex
	at     []time.Time
}

var _ pipeline.Outlet = (*timedOutlet)(nil)

func (o *timedOutlet) Send(_ context.Context, m *pipeline.Message) error {
	o.mu.Lock()
	o.at = append(o.at, o.clock.Now())
	n := len(o.at)
	o.mu.Unlock()
	if o.onSend != nil {
		o.onSend(n)
	}
	m.Ack()
	return nil
}

func (o *timedOutlet) SendTo(ctx context.Context, _ string, m *pipeline.Message) error {
	return o.Send(ctx, m)
}
func (o *timedOutlet) Fail(context.Context, *pipeline.Message, error) {}
func (o *timedOutlet) Drop(*pipeline.Message, string)                 {}

// runGenerate reads count messages one per interval, moving the clock in
// steps of step whenever the source waits (so every wait wakes up to step
// late), and returns the send times relative to the start.
func runGenerate(t *testing.T, interval, step time.Duration, count int64, onSend func(clock *pipelinetest.FakeClock, n int)) []time.Duration {
	t.Helper()
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := pipelinetest.NewFakeClock(start)
	prog, err := expr.Compile(`{"n": seq}`)
	if err != nil {
		t.Fatal(err)
	}
	src, err := newGenerate(&generateConfig{Count: count, Interval: interval, Message: prog}, component.Env{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	out := &timedOutlet{clock: clock}
	if onSend != nil {
		out.onSend = func(n int) { onSend(clock, n) }
	}
	done := make(chan error, 1)
	go func() { done <- src.Read(context.Background(), out) }()
	for running := true; running; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			running = false
		default:
			if clock.Timers() > 0 {
				clock.Advance(step)
			} else {
				runtime.Gosched()
			}
		}
	}
	rel := make([]time.Duration, len(out.at))
	for i, a := range out.at {
		rel[i] = a.Sub(start)
	}
	return rel
}

func TestGenerateIntervalHoldsItsRateThoughWakeUpsAreLate(t *testing.T) {
	// Given interval 100ms and every wait waking up to 350ms late, 101
	// messages take 10s (plus at most one late step), never ahead of the
	// timeline: by time t at most 1 + t/interval were sent.
	const interval, step = 100 * time.Millisecond, 350 * time.Millisecond
	at := runGenerate(t, interval, step, 101, nil)
	if len(at) != 101 {
		t.Fatalf("sent %d messages, want 101", len(at))
	}
	for i, a := range at {
		if i+1 > 1+int(a/interval) {
			t.Fatalf("message %d sent at +%v: ahead of one per %v", i+1, a, interval)
		}
	}
	if last := at[100]; last < 10*time.Second || last > 10*time.Second+step {
		t.Errorf("101 messages took %v, want 10s to %v (late wake-ups lose nothing)", last, 10*time.Second+step)
	}
}

func TestGenerateDoesNotMakeUpTimeSpentBlockedDownstream(t *testing.T) {
	// Given downstream blocking for 10s on the fifth message, the source
	// does not then burst the hundred messages it could have sent: the
	// sixth goes at once, the seventh one interval later.
	const interval = 100 * time.Millisecond
	at := runGenerate(t, interval, interval, 8, func(clock *pipelinetest.FakeClock, n int) {
		if n == 5 {
			clock.Advance(10 * time.Second)
		}
	})
	if len(at) != 8 {
		t.Fatalf("sent %d messages, want 8", len(at))
	}
	if d := at[6] - at[5]; d != interval {
		t.Errorf("after a 10s stall the 7th message followed the 6th by %v, want %v (sent: %v)", d, interval, at)
	}
}
