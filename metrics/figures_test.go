package metrics_test

import (
	"strings"
	"testing"

	"github.com/pipe-dsl/pipe/metrics"
	"github.com/pipe-dsl/pipe/pipeline"
)

func TestFiguresAreExportedAsPipeScopeNameWithTheNodeAndTheirLabel(t *testing.T) {
	stats := []pipeline.NodeStats{
		{Name: "slow", Kind: "throttle", Role: pipeline.RoleStage, Figures: []pipeline.Figure{
			{Name: "limited", Help: "Messages limited.", Kind: pipeline.Counter, Value: 7},
		}},
		{Name: "group", Kind: "batch", Role: pipeline.RoleStage, Figures: []pipeline.Figure{
			{Name: "flushes", Help: "Batches flushed.", Kind: pipeline.Counter, Label: "reason", LabelValue: "size", Value: 3},
			{Name: "flushes", Help: "Batches flushed.", Kind: pipeline.Counter, Label: "reason", LabelValue: "wait", Value: 1},
		}},
		{Name: "out", Kind: "http", Role: pipeline.RoleSink, Figures: []pipeline.Figure{
			{Scope: "breaker", Name: "state", Help: "Breaker state.", Kind: pipeline.Gauge, Value: 2},
			{Scope: "breaker", Name: "transitions", Help: "Transitions.", Kind: pipeline.Counter, Label: "to", LabelValue: "open", Value: 1},
			// A figure that breaks its name's label set is left out, not
			// allowed to fail the scrape.
			{Scope: "breaker", Name: "state", Help: "Breaker state.", Kind: pipeline.Gauge, Label: "x", LabelValue: "y", Value: 9},
		}},
		{Name: "out2", Kind: "kafka", Role: pipeline.RoleSink, Figures: []pipeline.Figure{
			{Scope: "breaker", Name: "state", Help: "Breaker state.", Kind: pipeline.Gauge, Value: 0},
		}},
		// A custom kind named "node" cannot clash with the node counters.
		{Name: "odd", Kind: "node", Role: pipeline.RoleStage, Figures: []pipeline.Figure{
			{Name: "messages_in", Kind: pipeline.Counter, Label: "x", LabelValue: "y", Value: 5},
		}},
	}
	body := scrape(t, func() (string, []pipeline.NodeStats) { return "orders", stats }, nil)
	for _, want := range []string{
		"# TYPE pipe_throttle_limited_total counter",
		`pipe_throttle_limited_total{kind="throttle",node="slow",pipeline="orders"} 7`,
		`pipe_batch_flushes_total{kind="batch",node="group",pipeline="orders",reason="size"} 3`,
		`pipe_batch_flushes_total{kind="batch",node="group",pipeline="orders",reason="wait"} 1`,
		"# TYPE pipe_breaker_state gauge",
		`pipe_breaker_state{kind="http",node="out",pipeline="orders"} 2`,
		`pipe_breaker_state{kind="kafka",node="out2",pipeline="orders"} 0`,
		`pipe_breaker_transitions_total{kind="http",node="out",pipeline="orders",to="open"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, ` 9`+"\n") {
		t.Errorf("/metrics has the inconsistent figure")
	}
	if t.Failed() {
		t.Log(body)
	}
}

func TestFigureNameFollowsPrometheusConventions(t *testing.T) {
	for _, c := range []struct {
		kind string
		f    pipeline.Figure
		want string
	}{
		{"throttle", pipeline.Figure{Name: "limited"}, "pipe_throttle_limited_total"},
		{"nats_jetstream", pipeline.Figure{Name: "keys", Kind: pipeline.Gauge}, "pipe_nats_jetstream_keys"},
		{"http", pipeline.Figure{Scope: "retry", Name: "attempts"}, "pipe_retry_attempts_total"},
		{"x-y", pipeline.Figure{Name: "sent_total"}, "pipe_x_y_sent_total"},
	} {
		if got := metrics.FigureName(c.kind, c.f); got != c.want {
			t.Errorf("FigureName(%q, %+v) = %q, want %q", c.kind, c.f, got, c.want)
		}
	}
}
