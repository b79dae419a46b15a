package resilience

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/goleak"

	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

var quiet = slog.New(slog.DiscardHandler)

// recSpan is a recording span that keeps its events' names and attributes.
type recSpan struct {
	noop.Span
	mu     sync.Mutex
	events []recEvent
}

type recEvent struct {
	name  string
	attrs map[string]any
}

func (s *recSpan) IsRecording() bool { return true }

func (s *recSpan) AddEvent(name string, opts ...trace.EventOption) {
	cfg := trace.NewEventConfig(opts...)
	e := recEvent{name: name, attrs: map[string]any{}}
	for _, kv := range cfg.Attributes() {
		e.attrs[string(kv.Key)] = kv.Value.AsInterface()
	}
	s.mu.Lock()
	s.events = append(s.events, e)
	s.mu.Unlock()
}

func (s *recSpan) Events() []recEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recEvent(nil), s.events...)
}

// tracedMessage returns a message whose context holds a recording span.
func tracedMessage(body string) (*pipeline.Message, *recSpan) {
	m := pipeline.NewMessage([]byte(body), nil)
	span := &recSpan{}
	m.SetContext(trace.ContextWithSpan(context.Background(), span))
	return m, span
}

// failing returns a Call that fails with errs[i] on attempt i and
// succeeds after them, counting calls.
func failing(errs ...error) (Call, *int) {
	var mu sync.Mutex
	n := new(int)
	return func(ctx context.Context, m *pipeline.Message) (*pipeline.Message, error) {
		mu.Lock()
		defer mu.Unlock()
		i := *n
		*n++
		if i < len(errs) {
			return nil, errs[i]
		}
		return m, nil
	}, n
}

// drive advances clock to each armed timer while done is open, returning
// the waits it saw.
func drive(clock *pipelinetest.FakeClock, done <-chan struct{}) []time.Duration {
	var waits []time.Duration
	armed := make(chan struct{})
	for {
		go func() { clock.WaitTimers(1); armed <- struct{}{} }()
		select {
		case <-done:
			// Release the waiter goroutine.
			t := clock.NewTimer(time.Hour)
			<-armed
			t.Stop()
			return waits
		case <-armed:
		}
		d, _ := clock.Next()
		waits = append(waits, d)
		clock.Advance(d)
	}
}
