package dsl_test

import (
	"strings"
	"testing"
)

func TestCompileRefusesAWindowThatOutlivesTheSourcesAckDeadline(t *testing.T) {
	const js = `source: {nats_jetstream: {stream: S, durable: d, ack_wait: 30s}}
sink: {stdout: {}}
stages:
  - window: `
	for _, tc := range []struct{ name, window, want string }{
		{"event time without idle_timeout has no clock bound",
			`{size: 10s, event_time: msg.ts}`,
			`p.yaml:4:5: window "window" holds each message until its windows close, which nothing on the clock bounds, but source "source" (nats_jetstream) redelivers a message not acked within 30s (ack_wait)`},
		{"a window longer than ack_wait",
			`{size: 1m, event_time: msg.ts, idle_timeout: 10s}`,
			`p.yaml:4:5: window "window" may hold a message for 1m10s (window length + max_out_of_order + allowed_lateness + idle_timeout), but source "source" (nats_jetstream) redelivers a message not acked within 30s (ack_wait): raise ack_wait above 1m10s`},
		{"processing time exactly at ack_wait",
			`{size: 20s, max_out_of_order: 10s}`,
			`may hold a message for 30s`},
		{"sessions have no clock bound",
			`{type: session, gap: 1s, idle_timeout: 1s}`,
			`which nothing on the clock bounds`},
		{"a short processing-time window is fine", `{size: 10s}`, ""},
		{"a short event-time window with idle_timeout is fine", `{size: 10s, event_time: msg.ts, max_out_of_order: 5s, idle_timeout: 10s}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := compileBatchErr(t, js+tc.window+"\n")
			if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
				t.Errorf("Compile = %q, want %q", got, tc.want)
			}
		})
	}
	// Sources without an ack deadline take any window.
	if got := compileBatchErr(t, "source: {generate: {count: 1, message: '{}'}}\nsink: {stdout: {}}\nstages:\n  - window: {type: session, gap: 1h, event_time: msg.ts}\n"); got != "" {
		t.Errorf("Compile with generate = %q, want ok", got)
	}
}

func TestWindowEmitTakesBothForms(t *testing.T) {
	for _, emit := range []string{"on_close", "{every: 1s}", "{mode: on_close, every: 1s}"} {
		src := "source: {generate: {count: 1, message: '{}'}}\nsink: {stdout: {}}\nstages:\n  - window: {size: 1s, emit: " + emit + "}\n"
		if got := compileBatchErr(t, src); got != "" {
			t.Errorf("emit: %s: %s", emit, got)
		}
	}
	src := "source: {generate: {count: 1, message: '{}'}}\nsink: {stdout: {}}\nstages:\n  - window: {size: 1s, emit: on_open}\n"
	if got := compileBatchErr(t, src); !strings.Contains(got, `"on_open" is not one of on_close`) {
		t.Errorf("emit: on_open: %q, want a refusal", got)
	}
}

func TestWindowConfigErrorsPointAtTheValueAndIntoTheExpression(t *testing.T) {
	got := compileBatchErr(t, `source: {generate: {count: 1, message: '{}'}}
sink: {stdout: {}}
stages:
  - window:
      size: 1m
      ends_when: msg.x
      aggregate:
        total: sum( "x")
        p: quantile(msg.a + , 0.5)
`)
	for _, want := range []string{
		`p.yaml:4:5: window: ends_when is for session windows; set type: session`,
		`p.yaml:8:21: window: aggregate.total: sum( "x"): sum takes a number, but the argument is a string`,
		`p.yaml:9:28: window: aggregate.p: quantile(msg.a + , 0.5): 1:8: Syntax error`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Compile errors:\n%s\nwant one starting %q", got, want)
		}
	}
}
