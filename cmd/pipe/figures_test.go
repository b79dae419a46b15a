package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/pipeline"
)

func TestTheSummaryShowsFlushReasonsAndBreakerTransitions(t *testing.T) {
	stats := []pipeline.NodeStats{
		{Name: "group", Kind: "batch", Role: pipeline.RoleStage, Figures: []pipeline.Figure{
			{Name: "flushes", Kind: pipeline.Counter, Label: "reason", LabelValue: "size", Value: 2},
			{Name: "flushes", Kind: pipeline.Counter, Label: "reason", LabelValue: "wait", Value: 0},
			{Name: "flushes", Kind: pipeline.Counter, Label: "reason", LabelValue: "shutdown", Value: 1},
		}},
		{Name: "out", Kind: "http", Role: pipeline.RoleSink, Figures: []pipeline.Figure{
			{Scope: "breaker", Name: "state", Kind: pipeline.Gauge, Value: 0},
			{Scope: "breaker", Name: "transitions", Kind: pipeline.Counter, Label: "to", LabelValue: "open", Value: 1},
			{Scope: "breaker", Name: "transitions", Kind: pipeline.Counter, Label: "to", LabelValue: "closed", Value: 1},
			{Scope: "breaker", Name: "rejected", Kind: pipeline.Counter, Value: 0},
		}},
	}
	var b bytes.Buffer
	printSummary(&b, stats, time.Second)
	for _, want := range []string{
		"  group  flushes              reason: size=2 shutdown=1\n",
		"  out    breaker state        0\n",
		"  out    breaker transitions  to: open=1 closed=1\n",
	} {
		if !bytes.Contains(b.Bytes(), []byte(want)) {
			t.Errorf("summary lacks %q:\n%s", want, b.String())
		}
	}
	if bytes.Contains(b.Bytes(), []byte("rejected")) {
		t.Errorf("summary shows a counter that stayed at zero:\n%s", b.String())
	}
}
