package stages

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/expr"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

func cel(t *testing.T, src string) *expr.Program {
	t.Helper()
	p, err := expr.Compile(src)
	if err != nil {
		t.Fatalf("Compile(%q) = %v", src, err)
	}
	return p
}

// windowRig runs a window stage on a fake clock at the Unix epoch. in is
// unbuffered: when a send returns, the stage has taken the message.
type windowRig struct {
	t      *testing.T
	w      *windowStage
	clock  *pipelinetest.FakeClock
	in     chan *pipeline.Message
	out    *recOutlet
	acks   *ackLog
	cancel context.CancelFunc
	done   chan error
	added  chan struct{} // a message was handled
}

func startWindow(t *testing.T, cfg windowConfig) *windowRig {
	t.Helper()
	if cfg.Type == "" {
		cfg.Type = "tumbling"
	}
	if cfg.OnLate == "" {
		cfg.OnLate = "drop"
	}
	if cfg.MaxCollect == 0 {
		cfg.MaxCollect = 1000
	}
	clock := pipelinetest.NewFakeClock(time.Unix(0, 0))
	v, err := newWindow(&cfg, component.Env{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &windowRig{t: t, w: v.(*windowStage), clock: clock, in: make(chan *pipeline.Message),
		out: newRecOutlet(), acks: newAckLog(), cancel: cancel, done: make(chan error, 1), added: make(chan struct{}, 1)}
	r.w.added = func() { r.added <- struct{}{} }
	go func() { r.done <- r.w.Run(ctx, r.in, r.out) }()
	t.Cleanup(func() {
		r.cancel()
		r.close()
	})
	return r
}

// send hands the stage each body and waits until it has handled it.
func (r *windowRig) send(bodies ...string) {
	for _, b := range bodies {
		r.in <- r.acks.msg(b)
		<-r.added
	}
}

// close ends the input (the end of the sources) and waits for Run, once.
func (r *windowRig) close() error {
	if r.in == nil {
		return nil
	}
	close(r.in)
	r.in = nil
	return <-r.done
}

// result receives the next output, checks its body and reason, and
// returns it (unacked).
func (r *windowRig) result(reason, body string) *pipeline.Message {
	r.t.Helper()
	s := r.out.next(r.t)
	if s.err != nil || s.drop != "" {
		r.t.Fatalf("got a failure or drop %+v (body %s), want result %s", s, s.m.Body, body)
	}
	if string(s.m.Body) != body || s.m.Meta[MetaWindowReason] != reason {
		r.t.Fatalf("result %s (reason %q),\nwant   %s (reason %q)", s.m.Body, s.m.Meta[MetaWindowReason], body, reason)
	}
	return s.m
}

func (r *windowRig) outcomes(want string, bodies ...string) {
	r.t.Helper()
	for _, b := range bodies {
		if got := r.acks.outcome(b); got != want {
			r.t.Errorf("%s: %s, want %s", b, got, want)
		}
	}
}

func (r *windowRig) figure(name, label string) float64 {
	for _, f := range r.w.Report() {
		if f.Name == name && f.LabelValue == label {
			return f.Value
		}
	}
	r.t.Fatalf("no figure %s{%s}", name, label)
	return 0
}

func spendConfig(t *testing.T) windowConfig {
	return windowConfig{Size: time.Minute, Key: cel(t, "msg.user"), EventTime: cel(t, "msg.ts"),
		Aggregate: map[string]string{"total": "sum(msg.amount)", "n": "count()"}}
}

const (
	a1 = `{"user":"ann","ts":1000,"amount":5}`
	b1 = `{"user":"bob","ts":2000,"amount":2.5}`
	a2 = `{"user":"ann","ts":59999,"amount":7}`
	a3 = `{"user":"ann","ts":60000,"amount":1}`
)

func TestWindowEmitsOneResultPerKeyAndWindowAndAcksMembersOnlyWhenItIsDelivered(t *testing.T) {
	r := startWindow(t, spendConfig(t))
	r.send(a1, b1, a2)
	r.out.none(t)
	r.send(a3) // watermark 60s closes [0, 60s)
	ann := r.result("watermark", `{"key":"ann","window_start":"1970-01-01T00:00:00Z","window_end":"1970-01-01T00:01:00Z","n":2,"total":12}`)
	bob := r.result("watermark", `{"key":"bob","window_start":"1970-01-01T00:00:00Z","window_end":"1970-01-01T00:01:00Z","n":1,"total":2.5}`)
	r.outcomes("pending", a1, a2, b1)
	ann.Ack()
	r.outcomes("acked", a1, a2)
	r.outcomes("pending", b1)
	bob.Nack(errors.New("sink down"))
	r.outcomes("nacked: sink down", b1)
	if err := r.close(); err != nil {
		t.Fatal(err)
	}
	r.result("end_of_input", `{"key":"ann","window_start":"1970-01-01T00:01:00Z","window_end":"1970-01-01T00:02:00Z","n":1,"total":1}`).Ack()
	r.outcomes("acked", a3)
	if r.figure("windows_closed", "watermark") != 2 || r.figure("windows_closed", "end_of_input") != 1 || r.figure("open_windows", "") != 0 {
		t.Errorf("figures = %+v", r.w.Report())
	}
}

func TestWindowDropsLateMessagesByDefaultAndCountsThem(t *testing.T) {
	r := startWindow(t, spendConfig(t))
	r.send(a1, a3)
	r.result("watermark", `{"key":"ann","window_start":"1970-01-01T00:00:00Z","window_end":"1970-01-01T00:01:00Z","n":1,"total":5}`)
	r.send(a2) // 59.999s: behind the watermark of 60s for [0, 60s)
	if s := r.out.next(t); s.drop != ReasonLate || string(s.m.Body) != a2 {
		t.Fatalf("got %+v, want a2 dropped as late", s)
	}
	r.outcomes("acked", a2)
	if got := r.figure("late", ""); got != 1 {
		t.Errorf("late = %v, want 1", got)
	}
}

func TestWindowDeadLettersLateMessagesWithReasonLate(t *testing.T) {
	cfg := spendConfig(t)
	cfg.OnLate = "dead_letter"
	r := startWindow(t, cfg)
	r.send(a3, a1)
	s := r.out.next(t)
	if s.err == nil || pipeline.Reason(s.err) != ReasonLate || !strings.Contains(s.err.Error(), "behind the watermark") {
		t.Fatalf("got %+v, want a1 failed with reason late", s)
	}
}

func TestWindowIdleTimeoutAdvancesTheWatermarkWithTheClock(t *testing.T) {
	cfg := spendConfig(t)
	cfg.IdleTimeout = 30 * time.Second
	r := startWindow(t, cfg)
	r.send(`{"user":"ann","ts":10000,"amount":1}`) // [0,60s); closes when W passes 60s: 50s after
	r.clock.WaitTimers(1)
	r.clock.Advance(50*time.Second - 1)
	r.out.none(t)
	r.clock.Advance(1)
	r.result("idle", `{"key":"ann","window_start":"1970-01-01T00:00:00Z","window_end":"1970-01-01T00:01:00Z","n":1,"total":1}`)
	if r.figure("windows_closed", "idle") != 1 {
		t.Errorf("windows_closed{idle} = %v", r.figure("windows_closed", "idle"))
	}
}

func TestWindowOnProcessingTimeClosesWindowsByTheClock(t *testing.T) {
	// idle_timeout has no quiet spell to wait for on processing time.
	r := startWindow(t, windowConfig{Size: 10 * time.Second, IdleTimeout: time.Minute, Aggregate: map[string]string{"n": "count()"}})
	r.clock.Advance(3 * time.Second)
	r.send(`{}`, `{}`)
	r.clock.WaitTimers(1)
	r.clock.Advance(7 * time.Second) // the clock reaches 10s
	r.result("watermark", `{"window_start":"1970-01-01T00:00:00Z","window_end":"1970-01-01T00:00:10Z","n":2}`)
}

func TestWindowEarlyResultsAreMarkedNotFinalAndCarryNoAcks(t *testing.T) {
	cfg := spendConfig(t)
	cfg.Emit.Every = time.Second
	r := startWindow(t, cfg)
	r.send(a1)
	r.clock.WaitTimers(1)
	r.clock.Advance(time.Second)
	r.result("early", `{"key":"ann","window_start":"1970-01-01T00:00:00Z","window_end":"1970-01-01T00:01:00Z","n":1,"total":5,"final":false}`).Ack()
	r.outcomes("pending", a1)
	r.send(a2)
	r.clock.WaitTimers(1)
	r.clock.Advance(time.Second)
	r.result("early", `{"key":"ann","window_start":"1970-01-01T00:00:00Z","window_end":"1970-01-01T00:01:00Z","n":2,"total":12,"final":false}`)
	r.send(a3)
	r.result("watermark", `{"key":"ann","window_start":"1970-01-01T00:00:00Z","window_end":"1970-01-01T00:01:00Z","n":2,"total":12}`).Ack()
	r.outcomes("acked", a1, a2)
}

func TestWindowEvictsTheOldestWindowAtMaxOpen(t *testing.T) {
	cfg := spendConfig(t)
	cfg.MaxOpen = 1
	r := startWindow(t, cfg)
	r.send(a1, b1)
	r.result("evicted", `{"key":"ann","window_start":"1970-01-01T00:00:00Z","window_end":"1970-01-01T00:01:00Z","n":1,"total":5}`)
	if r.figure("windows_closed", "evicted") != 1 || r.figure("open_windows", "") != 1 {
		t.Errorf("figures = %+v", r.w.Report())
	}
}

func TestWindowSlidingMemberIsAckedOnlyAfterEveryWindowHoldingItIsDelivered(t *testing.T) {
	r := startWindow(t, windowConfig{Type: "sliding", Size: 10 * time.Second, Slide: 5 * time.Second,
		EventTime: cel(t, "msg.ts"), Aggregate: map[string]string{"n": "count()"}})
	r.send(`{"ts":7000}`)
	if err := r.close(); err != nil {
		t.Fatal(err)
	}
	first := r.result("end_of_input", `{"window_start":"1970-01-01T00:00:00Z","window_end":"1970-01-01T00:00:10Z","n":1}`)
	second := r.result("end_of_input", `{"window_start":"1970-01-01T00:00:05Z","window_end":"1970-01-01T00:00:15Z","n":1}`)
	first.Ack()
	r.outcomes("pending", `{"ts":7000}`)
	second.Ack()
	r.outcomes("acked", `{"ts":7000}`)
}

func TestWindowEndsWhenClosesTheSession(t *testing.T) {
	r := startWindow(t, windowConfig{Type: "session", Gap: 30 * time.Second, Key: cel(t, "msg.user"), EventTime: cel(t, "msg.ts"),
		EndsWhen: cel(t, `msg.kind == "logout"`), Aggregate: map[string]string{"n": "count()", "last": "last(msg.kind)"}})
	r.send(`{"user":"ann","ts":1000,"kind":"click"}`, `{"user":"ann","ts":2000,"kind":"logout"}`)
	r.result("session_end", `{"key":"ann","window_start":"1970-01-01T00:00:01Z","window_end":"1970-01-01T00:00:32Z","last":"logout","n":2}`)
}

func TestWindowDeadLettersMessagesItCannotEvaluate(t *testing.T) {
	r := startWindow(t, spendConfig(t))
	for _, c := range []struct{ body, reason, text string }{
		{`{"user":"ann","ts":"yesterday","amount":1}`, pipeline.ReasonInvalidPayload, "RFC 3339"},
		{`{"user":"ann","amount":1}`, pipeline.ReasonExpression, "event_time"},
		{`{"user":"ann","ts":1000,"amount":"ten"}`, pipeline.ReasonExpression, "sum takes a number"},
		{`{"user":"ann","ts":9223372036854775807,"amount":1}`, pipeline.ReasonInvalidPayload, "out of range"},
		{`{"user":"ann","ts":"9999-01-01T00:00:00Z","amount":1}`, pipeline.ReasonInvalidPayload, "out of range"},
		{`{"user":"ann","ts":true,"amount":1}`, pipeline.ReasonInvalidPayload, "got bool"},
		{`not json`, pipeline.ReasonInvalidPayload, ""},
	} {
		r.send(c.body)
		s := r.out.next(t)
		if s.err == nil || pipeline.Reason(s.err) != c.reason || !strings.Contains(s.err.Error(), c.text) {
			t.Errorf("%s: got %+v, want failed with reason %s mentioning %q", c.body, s, c.reason, c.text)
		}
	}
	if r.figure("open_windows", "") != 0 {
		t.Error("a refused message opened a window")
	}
}

func TestWindowHardStopNacksHeldMessages(t *testing.T) {
	r := startWindow(t, spendConfig(t))
	r.send(a1)
	r.cancel()
	if err := <-r.done; !errors.Is(err, pipeline.ErrAbandoned) {
		t.Fatalf("Run = %v, want ErrAbandoned", err)
	}
	r.in = nil
	r.outcomes("nacked: "+pipeline.ErrAbandoned.Error(), a1)
}

func TestWindowRefusesConfigsThatCannotWork(t *testing.T) {
	for _, c := range []struct {
		cfg  windowConfig
		want string
	}{
		{windowConfig{Type: "tumbling"}, "tumbling windows need size"},
		{windowConfig{Type: "tumbling", Size: time.Second, Slide: time.Second}, "slide is for sliding"},
		{windowConfig{Type: "sliding", Size: time.Second}, "need size and slide"},
		{windowConfig{Type: "sliding", Size: time.Second, Slide: 2 * time.Second}, "longer than size"},
		{windowConfig{Type: "session", Size: time.Second, Gap: time.Second}, "take gap, not size"},
		{windowConfig{Type: "tumbling", Size: time.Second, Gap: time.Second}, "gap is for session"},
		{windowConfig{Type: "tumbling", Size: time.Second, EndsWhen: cel(t, "true")}, "ends_when is for session"},
		{windowConfig{Type: "tumbling", Size: time.Second, Partitioning: "source"}, "source partitioning needs key"},
		{windowConfig{Type: "tumbling", Size: time.Second, Aggregate: map[string]string{"key": "count()"}}, "reserved"},
		{windowConfig{Type: "tumbling", Size: time.Second, EventTime: cel(t, "msg.ts > 0")}, "event_time: the expression is a bool"},
		{windowConfig{Type: "session", Gap: time.Second, EndsWhen: cel(t, "msg.kind")}, ""},
		{windowConfig{Type: "session", Gap: time.Second, EndsWhen: cel(t, `"logout"`)}, "ends_when: the expression is a string; want a bool"},
		{windowConfig{Type: "tumbling", Size: time.Second, Aggregate: map[string]string{"x": "median(msg.a)"}}, `unknown function "median"`},
		{windowConfig{Type: "tumbling", Size: time.Second, Aggregate: map[string]string{"x": "sum(msg.a, 2)"}}, "sum takes 1 argument"},
		{windowConfig{Type: "tumbling", Size: time.Second, Aggregate: map[string]string{"x": `sum("ten")`}}, "sum takes a number, but the argument is a string"},
		{windowConfig{Type: "tumbling", Size: time.Second, Aggregate: map[string]string{"x": `max([1])`}}, "number or a string"},
		{windowConfig{Type: "tumbling", Size: time.Second, Aggregate: map[string]string{"x": `quantile(msg.a, 1.5)`}}, "rank must be a number in [0, 1]"},
		{windowConfig{Type: "tumbling", Size: time.Second, Aggregate: map[string]string{"x": `count`}}, "want function(argument)"},
		{windowConfig{Type: "tumbling", Size: time.Second, Aggregate: map[string]string{"x": `sum(msg.)`}}, "Syntax error"},
	} {
		c.cfg.MaxCollect = 10
		_, err := newWindow(&c.cfg, component.Env{})
		if c.want == "" {
			if err != nil {
				t.Errorf("newWindow(%+v) = %v, want ok", c.cfg, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("newWindow(%+v) = %v, want an error containing %q", c.cfg, err, c.want)
		}
	}
}

func TestWindowAggregatesParseNestedArguments(t *testing.T) {
	v, err := newWindow(&windowConfig{Type: "tumbling", Size: time.Second, MaxCollect: 3, Aggregate: map[string]string{
		"p": `quantile(math.greatest([msg.a, msg.b]), 0.99)`, "s": `collect("a,b(" + msg.id)`}}, component.Env{})
	if err != nil {
		t.Fatal(err)
	}
	w := v.(*windowStage)
	if len(w.spec.Aggs) != 2 || w.spec.Aggs[0].Q != 0.99 || w.spec.Aggs[1].MaxCollect != 3 {
		t.Errorf("aggs = %+v", w.spec.Aggs)
	}
}
