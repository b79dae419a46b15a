package stages

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pipe-dsl/pipe/pipeline"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sent is one message a stage handed to its outlet.
type sent struct {
	port string
	m    *pipeline.Message
	err  error  // for Fail
	drop string // for Drop
}

// recOutlet records what a stage under test hands on, in order, on one
// channel; its buffer is large enough that the stage never blocks on it.
type recOutlet struct{ c chan sent }

var _ pipeline.Outlet = (*recOutlet)(nil)

func newRecOutlet() *recOutlet { return &recOutlet{c: make(chan sent, 1024)} }

func (o *recOutlet) Send(ctx context.Context, m *pipeline.Message) error {
	return o.SendTo(ctx, "", m)
}

func (o *recOutlet) SendTo(_ context.Context, port string, m *pipeline.Message) error {
	o.c <- sent{port: port, m: m}
	return nil
}

func (o *recOutlet) Fail(_ context.Context, m *pipeline.Message, err error) {
	o.c <- sent{m: m, err: err}
}

func (o *recOutlet) Drop(m *pipeline.Message, reason string) {
	m.Ack()
	o.c <- sent{m: m, drop: reason}
}

// next returns the next message the stage handed on. The timeout only
// turns a missing message into a failure; no test waits on it to pass.
func (o *recOutlet) next(t *testing.T) sent {
	t.Helper()
	select {
	case s := <-o.c:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("the stage handed nothing on")
		return sent{}
	}
}

// none fails if the stage has handed anything on. Call it only after a
// point the stage must have passed without sending.
func (o *recOutlet) none(t *testing.T) {
	t.Helper()
	select {
	case s := <-o.c:
		t.Fatalf("the stage handed on %s, want nothing yet", bodiesOf(s.m))
	default:
	}
}

// ackLog records the outcome of test messages by body.
type ackLog struct {
	mu  sync.Mutex
	got map[string]error // nil value: acked
}

func newAckLog() *ackLog { return &ackLog{got: map[string]error{}} }

func (a *ackLog) msg(body string) *pipeline.Message {
	return pipeline.NewMessage([]byte(body), func(err error) {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.got[body] = err
	})
}

// outcome returns "acked", "nacked: ERR" or "pending".
func (a *ackLog) outcome(body string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	err, ok := a.got[body]
	switch {
	case !ok:
		return "pending"
	case err == nil:
		return "acked"
	}
	return "nacked: " + err.Error()
}

// bodiesOf lists a message's body, or its members' for a batch.
func bodiesOf(m *pipeline.Message) []string {
	if m == nil {
		return nil
	}
	if b := m.Batch(); b != nil {
		out := make([]string, len(b))
		for i, x := range b {
			out[i] = string(x.Body)
		}
		return out
	}
	return []string{string(m.Body)}
}
