package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type process = pipelinetest.ProcessorFunc

func upper(_ context.Context, m *pipeline.Message) (*pipeline.Message, error) {
	m.SetBody([]byte(strings.ToUpper(string(m.Body))))
	return m, nil
}

func bodies(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("m%d", i)
	}
	return out
}

// linear builds source -> stage -> sink.
func linear(t *testing.T, src pipeline.Source, st any, sink pipeline.Sink, o pipeline.NodeOptions) *pipeline.Pipeline {
	t.Helper()
	p := pipeline.New("test")
	must(t, p.AddSource("src", "test", src))
	must(t, p.AddStage("st", "test", st, o))
	must(t, p.AddSink("out", "test", sink, pipeline.NodeOptions{Buffer: o.Buffer}))
	must(t, p.Connect("src", "", "st"))
	must(t, p.Connect("st", "", "out"))
	return p
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond, yielding the processor, until it holds; the test
// deadline bounds it. It waits on state, never on a duration.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if d, ok := t.Deadline(); ok && time.Until(d) < time.Second {
			t.Fatalf("never happened: %s", what)
		}
		runtime.Gosched()
	}
}

func TestLinearPipelineDeliversInOrderAndAcksEveryMessage(t *testing.T) {
	src := pipelinetest.NewSource(bodies(500)...)
	sink := &pipelinetest.Sink{}
	p := linear(t, src, process(upper), sink, pipeline.NodeOptions{Buffer: 4})
	must(t, p.Run(context.Background()))

	want := bodies(500)
	for i := range want {
		want[i] = strings.ToUpper(want[i])
	}
	if got := sink.Bodies(); !slices.Equal(got, want) {
		t.Fatalf("sink got %d bodies, want %d in order", len(got), len(want))
	}
	if got := len(src.Acked()); got != 500 {
		t.Fatalf("acked = %d, want 500", got)
	}
	if n := src.Nacked(); len(n) != 0 {
		t.Fatalf("nacked = %v, want none", n)
	}
}

func TestBlockedSinkStopsTheSourceWithinTheBufferBound(t *testing.T) {
	const buffer = 8
	src := pipelinetest.NewSource(bodies(1000)...)
	gate := make(chan struct{})
	sink := &pipelinetest.Sink{Gate: gate}
	p := linear(t, src, process(upper), sink, pipeline.NodeOptions{Buffer: buffer})
	done := make(chan error)
	go func() { done <- p.Run(context.Background()) }()

	// Given a sink that accepts nothing, the buffers fill up ...
	queued := func(name string) int {
		for _, s := range p.Stats() {
			if s.Name == name {
				return s.Queued
			}
		}
		return -1
	}
	eventually(t, "both buffers full", func() bool { return queued("st") == buffer && queued("out") == buffer })
	// ... holding exactly: the sink's write, its buffer, the stage's blocked
	// send, the stage's buffer. The source's next message is blocked.
	const bound = 2*buffer + 2
	eventually(t, "source sent the bound", func() bool { return src.Sent() >= bound-1 })
	if got := src.Sent(); got > bound {
		t.Fatalf("source sent %d messages with a blocked sink, want at most %d", got, bound)
	}
	if got := len(src.Acked()); got != 0 {
		t.Fatalf("acked %d messages before the sink accepted any", got)
	}

	// When the sink accepts one message, exactly that one is acked.
	gate <- struct{}{}
	eventually(t, "one ack", func() bool { return len(src.Acked()) == 1 })
	if got := src.Acked(); got[0] != 0 {
		t.Fatalf("first acked = %d, want message 0", got[0])
	}
	close(gate)
	must(t, <-done)
	if got := len(src.Acked()); got != 1000 {
		t.Fatalf("acked = %d, want 1000", got)
	}
}

func TestFailedMessagesAreNackedWithoutADeadLetterSink(t *testing.T) {
	src := pipelinetest.NewSource("ok", "bad", "ok")
	sink := &pipelinetest.Sink{Fail: func(m *pipeline.Message) error {
		if string(m.Body) == "bad" {
			return errors.New("refused")
		}
		return nil
	}}
	p := linear(t, src, process(func(_ context.Context, m *pipeline.Message) (*pipeline.Message, error) { return m, nil }), sink, pipeline.NodeOptions{})
	must(t, p.Run(context.Background()))
	if got := src.Acked(); !slices.Equal(sorted(got), []int{0, 2}) {
		t.Fatalf("acked = %v, want [0 2]", got)
	}
	nacks := src.Nacked()
	if err := nacks[1]; err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("nack of message 1 = %v, want the sink's error", err)
	}
	if s := statsOf(p, "out"); s.Failed != 1 || s.Nacked != 1 || s.Out != 2 {
		t.Fatalf("sink stats = %+v, want failed 1, nacked 1, out 2", s)
	}
}

func sorted(s []int) []int { slices.Sort(s); return s }

func statsOf(p *pipeline.Pipeline, name string) pipeline.NodeStats {
	for _, s := range p.Stats() {
		if s.Name == name {
			return s
		}
	}
	return pipeline.NodeStats{}
}

func TestProcessorErrorsGoToTheDeadLetterSinkWithTheirReason(t *testing.T) {
	src := pipelinetest.NewSource(`{"n":1}`, `not json`, `{"n":3}`)
	sink, dlq := &pipelinetest.Sink{}, &pipelinetest.Sink{}
	st := process(func(_ context.Context, m *pipeline.Message) (*pipeline.Message, error) {
		if !json.Valid(m.Body) {
			return nil, pipeline.WithReason(pipeline.ReasonInvalidPayload, errors.New("invalid JSON"))
		}
		return m, nil
	})
	p := linear(t, src, st, sink, pipeline.NodeOptions{})
	must(t, p.SetDeadLetter("test", dlq, pipeline.NodeOptions{}))
	must(t, p.Run(context.Background()))

	if got := sink.Bodies(); !slices.Equal(got, []string{`{"n":1}`, `{"n":3}`}) {
		t.Fatalf("sink = %v", got)
	}
	got := dlq.Bodies()
	if len(got) != 1 {
		t.Fatalf("dead letters = %v, want 1", got)
	}
	var env pipeline.DeadLetter
	must(t, json.Unmarshal([]byte(got[0]), &env))
	if env.Reason != pipeline.ReasonInvalidPayload || env.Stage != "st" || env.PayloadText != "not json" || env.Error != "invalid JSON" || env.Attempts != 1 {
		t.Fatalf("envelope = %+v", env)
	}
	// The dead-lettered message counts as handled: all three are acked.
	if got := sorted(src.Acked()); !slices.Equal(got, []int{0, 1, 2}) {
		t.Fatalf("acked = %v, want all", got)
	}
}

func TestADeadLetterSinkFailureNacksTheMessage(t *testing.T) {
	src := pipelinetest.NewSource("a", "b")
	sink := &pipelinetest.Sink{Fail: func(*pipeline.Message) error { return errors.New("down") }}
	dlq := &pipelinetest.Sink{Fail: func(*pipeline.Message) error { return errors.New("dlq down too") }}
	p := linear(t, src, process(upper), sink, pipeline.NodeOptions{})
	must(t, p.SetDeadLetter("test", dlq, pipeline.NodeOptions{}))
	must(t, p.Run(context.Background()))
	if got := src.Acked(); len(got) != 0 {
		t.Fatalf("acked = %v, want none", got)
	}
	if got := src.Nacked(); len(got) != 2 || !strings.Contains(got[0].Error(), "dlq down too") {
		t.Fatalf("nacked = %v, want both with the dead-letter error", got)
	}
}

func TestBroadcastAcksOnlyAfterEverySinkAccepted(t *testing.T) {
	src := pipelinetest.NewSource("x", "y")
	a := &pipelinetest.Sink{}
	gate := make(chan struct{})
	b := &pipelinetest.Sink{Gate: gate}
	p := pipeline.New("fan")
	must(t, p.AddSource("src", "test", src))
	must(t, p.AddSink("a", "test", a, pipeline.NodeOptions{}))
	must(t, p.AddSink("b", "test", b, pipeline.NodeOptions{}))
	must(t, p.Connect("src", "", "a"))
	must(t, p.Connect("src", "", "b"))
	done := make(chan error)
	go func() { done <- p.Run(context.Background()) }()
	eventually(t, "sink a wrote both", func() bool { return len(a.Bodies()) == 2 })
	if got := src.Acked(); len(got) != 0 {
		t.Fatalf("acked %v while sink b had accepted nothing", got)
	}
	close(gate)
	must(t, <-done)
	if got := sorted(src.Acked()); !slices.Equal(got, []int{0, 1}) {
		t.Fatalf("acked = %v", got)
	}
	if !slices.Equal(b.Bodies(), []string{"x", "y"}) {
		t.Fatalf("sink b = %v", b.Bodies())
	}
}

func TestBroadcastNacksWhenOneBranchFails(t *testing.T) {
	src := pipelinetest.NewSource("x")
	a := &pipelinetest.Sink{}
	b := &pipelinetest.Sink{Fail: func(*pipeline.Message) error { return errors.New("b failed") }}
	p := pipeline.New("fan")
	must(t, p.AddSource("src", "test", src))
	must(t, p.AddSink("a", "test", a, pipeline.NodeOptions{}))
	must(t, p.AddSink("b", "test", b, pipeline.NodeOptions{}))
	must(t, p.Connect("src", "", "a"))
	must(t, p.Connect("src", "", "b"))
	must(t, p.Run(context.Background()))
	if len(src.Acked()) != 0 || src.Nacked()[0] == nil {
		t.Fatalf("acked %v nacked %v; want message 0 nacked", src.Acked(), src.Nacked())
	}
}

// endless sends numbered messages until its context ends.
type endless struct {
	mu         sync.Mutex
	sent, acks int
	nacks      int
}

func (e *endless) Read(ctx context.Context, out pipeline.Outlet) error {
	for i := 0; ; i++ {
		m := pipeline.NewMessage([]byte(fmt.Sprint(i)), func(err error) {
			e.mu.Lock()
			defer e.mu.Unlock()
			if err != nil {
				e.nacks++
			} else {
				e.acks++
			}
		})
		if out.Send(ctx, m) != nil {
			return nil
		}
		e.mu.Lock()
		e.sent++
		e.mu.Unlock()
	}
}

func (e *endless) counts() (sent, acks, nacks int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sent, e.acks, e.nacks
}

func TestCancelDrainsEveryMessageAlreadyRead(t *testing.T) {
	src := &endless{}
	sink := &pipelinetest.Sink{}
	p := linear(t, src, process(upper), sink, pipeline.NodeOptions{Buffer: 16})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	eventually(t, "some deliveries", func() bool { return len(sink.Bodies()) > 100 })
	cancel()
	must(t, <-done)
	sent, acks, nacks := src.counts()
	// The one message whose Send the stop interrupted is nacked, per Outlet.Send.
	if acks != sent || nacks > 1 {
		t.Fatalf("after drain: sent %d, acked %d, nacked %d; want all sent acked", sent, acks, nacks)
	}
	if got := len(sink.Bodies()); got != sent {
		t.Fatalf("sink got %d, source sent %d", got, sent)
	}
}

func TestDrainTimeoutAbandonsAndNacksWhatIsStuck(t *testing.T) {
	clock := pipelinetest.NewFakeClock(time.Unix(0, 0))
	src := &endless{}
	sink := &pipelinetest.Sink{Gate: make(chan struct{})} // never opens
	p := linear(t, src, process(upper), sink, pipeline.NodeOptions{Buffer: 4})
	p.Clock, p.DrainTimeout = clock, 5*time.Second
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	eventually(t, "buffers full", func() bool { return statsOf(p, "out").Queued == 4 })
	cancel()
	clock.WaitTimers(1)
	clock.Advance(5 * time.Second)
	err := <-done
	var ab *pipeline.AbandonedError
	if !errors.As(err, &ab) || !errors.Is(err, pipeline.ErrDrainTimeout) {
		t.Fatalf("Run = %v, want an AbandonedError", err)
	}
	sent, acks, nacks := src.counts()
	total := 0
	for _, n := range ab.InFlight {
		total += n
	}
	// The message whose Send the soft stop interrupted is nacked by Send;
	// everything that got in is reported as abandoned.
	if acks != 0 || nacks != sent+1 || total != sent {
		t.Fatalf("sent %d (+1 blocked), acked %d, nacked %d, reported in flight %v", sent, acks, nacks, ab.InFlight)
	}
}

func TestOrderedWorkersKeepInputOrderUnderRandomLatency(t *testing.T) {
	const n, workers = 200, 4
	started := make(chan int, n)
	release := make([]chan struct{}, n)
	for i := range release {
		release[i] = make(chan struct{})
	}
	st := process(func(ctx context.Context, m *pipeline.Message) (*pipeline.Message, error) {
		var i int
		fmt.Sscanf(string(m.Body), "m%d", &i)
		started <- i
		<-release[i]
		return m, nil
	})
	src := pipelinetest.NewSource(bodies(n)...)
	sink := &pipelinetest.Sink{}
	p := linear(t, src, st, sink, pipeline.NodeOptions{Buffer: 8, Workers: workers, Ordered: true})
	done := make(chan error)
	go func() { done <- p.Run(context.Background()) }()

	// Finish in-progress items in random order, so later items often finish first.
	rng := rand.New(rand.NewPCG(1, 2))
	var busy []int
	for finished := 0; finished < n; finished++ {
		for len(busy) == 0 || len(busy) < workers && len(started) > 0 {
			busy = append(busy, <-started)
		}
		k := rng.IntN(len(busy))
		close(release[busy[k]])
		busy = slices.Delete(busy, k, k+1)
	}
	must(t, <-done)
	if got := sink.Bodies(); !slices.Equal(got, bodies(n)) {
		t.Fatalf("output order differs from input order: %v", got[:10])
	}
}

func TestUnorderedWorkersRunConcurrently(t *testing.T) {
	const workers = 3
	inside := make(chan struct{}, workers)
	gate := make(chan struct{})
	st := process(func(ctx context.Context, m *pipeline.Message) (*pipeline.Message, error) {
		inside <- struct{}{}
		<-gate
		return m, nil
	})
	src := pipelinetest.NewSource(bodies(10)...)
	sink := &pipelinetest.Sink{}
	p := linear(t, src, st, sink, pipeline.NodeOptions{Workers: workers})
	done := make(chan error)
	go func() { done <- p.Run(context.Background()) }()
	for range workers {
		<-inside // all three workers are inside Process at once
	}
	close(gate)
	go func() {
		for range inside {
		}
	}()
	must(t, <-done)
	close(inside)
	if got := len(sink.Bodies()); got != 10 {
		t.Fatalf("delivered %d, want 10", got)
	}
}

func TestValidateRejectsCyclesAndDanglingNodes(t *testing.T) {
	p := pipeline.New("bad")
	must(t, p.AddSource("src", "test", pipelinetest.NewSource()))
	must(t, p.AddStage("a", "test", process(upper), pipeline.NodeOptions{}))
	must(t, p.AddStage("b", "test", process(upper), pipeline.NodeOptions{}))
	must(t, p.AddStage("c", "test", process(upper), pipeline.NodeOptions{}))
	must(t, p.AddSink("out", "test", &pipelinetest.Sink{}, pipeline.NodeOptions{}))
	must(t, p.Connect("src", "", "a"))
	must(t, p.Connect("a", "", "b"))
	must(t, p.Connect("b", "", "a"))
	must(t, p.Connect("src", "", "c"))
	err := p.Validate()
	for _, want := range []string{"cycle: a -> b -> a", `sink "out" has no inputs`, `stage "c" feeds nothing`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to mention %q", err, want)
		}
	}
}

// A processor may return a message other than its input: a new one or a
// copy. Either way the source ack waits for what was returned.
func TestAProcessorReturningAnotherMessageHandsOnTheAck(t *testing.T) {
	for name, replace := range map[string]func(m *pipeline.Message) *pipeline.Message{
		"new":  func(m *pipeline.Message) *pipeline.Message { return pipeline.NewMessage([]byte("new"), nil) },
		"copy": func(m *pipeline.Message) *pipeline.Message { return m.Copy() },
	} {
		t.Run(name, func(t *testing.T) {
			src := pipelinetest.NewSource(bodies(50)...)
			sink := &pipelinetest.Sink{Fail: func(m *pipeline.Message) error {
				if m.Meta["fail"] == "yes" {
					return errors.New("refused")
				}
				return nil
			}}
			var n int
			p := linear(t, src, process(func(_ context.Context, m *pipeline.Message) (*pipeline.Message, error) {
				r := replace(m)
				if n++; n%2 == 0 {
					r.Meta = map[string]string{"fail": "yes"}
				}
				return r, nil
			}), sink, pipeline.NodeOptions{Buffer: 4})
			must(t, p.Run(context.Background()))
			if a, nk := len(src.Acked()), len(src.Nacked()); a != 25 || nk != 25 {
				t.Fatalf("acked %d, nacked %d; want 25 and 25", a, nk)
			}
		})
	}
}

// blockedSource sends one message, then waits for its context.
type blockedSource struct{ sent chan struct{} }

func (s blockedSource) Read(ctx context.Context, out pipeline.Outlet) error {
	if err := out.Send(ctx, pipeline.NewMessage([]byte("m"), nil)); err != nil {
		return err
	}
	close(s.sent)
	<-ctx.Done()
	return nil
}

// Kill alone, without cancelling Run's context, stops a source that waits
// on its context.
func TestKillStopsASourceBlockedOnItsContext(t *testing.T) {
	src := blockedSource{sent: make(chan struct{})}
	sink := &pipelinetest.Sink{}
	p := linear(t, src, process(upper), sink, pipeline.NodeOptions{})
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background()) }()
	<-src.sent
	p.Kill()
	<-done
}

// stopWatcher is a stage that passes messages on and records, when its
// input closes, whether the soft stop had begun.
type stopWatcher struct{ stopping chan bool }

func (s *stopWatcher) Run(ctx context.Context, in <-chan *pipeline.Message, out pipeline.Outlet) error {
	for m := range in {
		if err := out.Send(ctx, m); err != nil {
			return err
		}
	}
	s.stopping <- pipeline.Stopping(ctx)
	return nil
}

func TestStoppingTellsAStageASoftStopFromTheEndOfItsSources(t *testing.T) {
	finite := &stopWatcher{stopping: make(chan bool, 1)}
	must(t, linear(t, pipelinetest.NewSource("a", "b"), finite, &pipelinetest.Sink{}, pipeline.NodeOptions{}).Run(context.Background()))
	if got := <-finite.stopping; got {
		t.Error("Stopping() at the end of a finite source = true, want false")
	}

	stopped := &stopWatcher{stopping: make(chan bool, 1)}
	sink := &pipelinetest.Sink{}
	p := linear(t, &endless{}, stopped, sink, pipeline.NodeOptions{Buffer: 4})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	eventually(t, "some deliveries", func() bool { return len(sink.Bodies()) > 10 })
	cancel()
	must(t, <-done)
	if got := <-stopped.stopping; !got {
		t.Error("Stopping() after cancel = false, want true")
	}
}
