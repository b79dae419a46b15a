package stages

import (
	"context"
	"slices"
	"testing"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/expr"
	"github.com/pipe-dsl/pipe/pipeline"
)

func newTestRoute(t *testing.T, cases ...string) *route {
	t.Helper()
	var c routeConfig
	for i := 0; i+1 < len(cases); i += 2 {
		p, err := expr.Compile(cases[i+1])
		if err != nil {
			t.Fatal(err)
		}
		c.Cases = append(c.Cases, routeCase{Name: cases[i], When: p})
	}
	v, err := newRoute(&c, component.Env{})
	if err != nil {
		t.Fatal(err)
	}
	return v.(*route)
}

// routeAll runs r over bodies and returns what it handed on, in order.
func routeAll(t *testing.T, r *route, msgs ...*pipeline.Message) []sent {
	t.Helper()
	in := make(chan *pipeline.Message, len(msgs))
	for _, m := range msgs {
		in <- m
	}
	close(in)
	out := newRecOutlet()
	if err := r.Run(context.Background(), in, out); err != nil {
		t.Fatal(err)
	}
	close(out.c)
	var got []sent
	for s := range out.c {
		got = append(got, s)
	}
	return got
}

func TestRouteSendsToTheFirstMatchingCaseElseDefault(t *testing.T) {
	r := newTestRoute(t,
		"errors", `msg.level == "error"`,
		"loud", `msg.level == "error" || msg.level == "warn"`,
		"meta", `meta.?team.orValue("") == "ops"`)
	if want := []string{"errors", "loud", "meta", "default"}; !slices.Equal(r.Ports(), want) {
		t.Fatalf("Ports() = %v, want %v", r.Ports(), want)
	}
	a := newAckLog()
	ops := a.msg(`{"level":"info"}`)
	ops.Meta = map[string]string{"team": "ops"}
	got := routeAll(t, r, a.msg(`{"level":"error"}`), a.msg(`{"level":"warn"}`), ops, a.msg(`{"level":"debug"}`))
	want := []string{"errors", "loud", "meta", "default"}
	if len(got) != len(want) {
		t.Fatalf("handed on %d messages, want %d", len(got), len(want))
	}
	for i, s := range got {
		if s.port != want[i] || s.err != nil {
			t.Errorf("message %d (%s) went to port %q (err %v), want %q", i, s.m.Body, s.port, s.err, want[i])
		}
	}
}

func TestRouteSendsEvaluationErrorsToTheDeadLetterPath(t *testing.T) {
	r := newTestRoute(t, "big", `msg.n > 10`)
	a := newAckLog()
	got := routeAll(t, r, a.msg(`not json`), a.msg(`{"n": "text"}`),
		pipeline.NewBatch([]*pipeline.Message{a.msg(`{"n": 11}`)}))
	want := []string{pipeline.ReasonInvalidPayload, pipeline.ReasonExpression, pipeline.ReasonInvalidPayload}
	if len(got) != len(want) {
		t.Fatalf("handed on %d messages, want %d", len(got), len(want))
	}
	for i, s := range got {
		if s.err == nil || pipeline.Reason(s.err) != want[i] {
			t.Errorf("message %d: err %v, want reason %s", i, s.err, want[i])
		}
	}
}

func TestRouteReturnsAtTheHardStop(t *testing.T) {
	r := newTestRoute(t, "a", "true")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Run(ctx, make(chan *pipeline.Message), newRecOutlet()); err != nil {
		t.Fatalf("Run = %v", err)
	}
}
