package connectors

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/expr"
	"github.com/pipe-dsl/pipe/pipeline"
)

// bodiesOutlet records the bodies it is sent; stop, if set, runs after
// each Send with the count so far.
type bodiesOutlet struct {
	bodies []string
	stop   func(n int)
}

func (o *bodiesOutlet) Send(_ context.Context, m *pipeline.Message) error {
	o.bodies = append(o.bodies, string(m.Body))
	m.Ack()
	if o.stop != nil {
		o.stop(len(o.bodies))
	}
	return nil
}
func (o *bodiesOutlet) SendTo(ctx context.Context, _ string, m *pipeline.Message) error {
	return o.Send(ctx, m)
}
func (o *bodiesOutlet) Fail(context.Context, *pipeline.Message, error) {}
func (o *bodiesOutlet) Drop(*pipeline.Message, string)                 {}

func burstSource(t *testing.T, message string, count int64) pipeline.Source {
	t.Helper()
	prog, err := expr.Compile(message)
	if err != nil {
		t.Fatal(err)
	}
	src, err := newGenerate(&generateConfig{Count: count, Message: prog}, component.Env{})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func TestGenerateWithoutIntervalSendsEveryMessageInOrderAcrossBursts(t *testing.T) {
	const n = 2*burstOf + 5 // two full bursts and a partial one
	out := &bodiesOutlet{}
	if err := burstSource(t, `{"n": seq}`, n).Read(context.Background(), out); err != nil {
		t.Fatalf("Read: %v", err)
	}
	if len(out.bodies) != n {
		t.Fatalf("sent %d messages, want %d", len(out.bodies), n)
	}
	for i, b := range out.bodies {
		if want := fmt.Sprintf(`{"n":%d}`, i+1); b != want {
			t.Fatalf("message %d = %s, want %s", i+1, b, want)
		}
	}
}

func TestGenerateWithoutIntervalSendsTheMessagesBeforeAFailedOneThenFails(t *testing.T) {
	out := &bodiesOutlet{}
	// Message 20 divides by zero: 1..19 go out, then Read fails.
	err := burstSource(t, `{"n": 100 / (20 - seq)}`, 40).Read(context.Background(), out)
	if err == nil || !strings.Contains(err.Error(), "division by zero") {
		t.Fatalf("Read = %v, want the division by zero", err)
	}
	if len(out.bodies) != 19 {
		t.Fatalf("sent %d messages before the failure, want 19", len(out.bodies))
	}
}

func TestGenerateWithoutIntervalStopsWithinABurstOfTheSoftStop(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &bodiesOutlet{stop: func(n int) {
		if n == 3 {
			cancel()
		}
	}}
	if err := burstSource(t, `{"n": seq}`, 0).Read(ctx, out); err != nil { // unbounded
		t.Fatalf("Read: %v", err)
	}
	if len(out.bodies) > burstOf {
		t.Fatalf("sent %d messages after a soft stop at the third, want at most one burst (%d)", len(out.bodies), burstOf)
	}
}
