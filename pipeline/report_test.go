package pipeline_test

import (
	"context"
	"errors"
	"maps"
	"testing"

	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

// reporting is a pass-through processor with one figure of its own.
type reporting struct{ pipelinetest.ProcessorFunc }

func (reporting) Report() []pipeline.Figure {
	return []pipeline.Figure{{Name: "limited", Kind: pipeline.Counter, Value: 7}}
}

func TestStatsCarryTheFiguresOfNodesThatReportThem(t *testing.T) {
	pass := func(_ context.Context, m *pipeline.Message) (*pipeline.Message, error) { return m, nil }
	p := linear(t, pipelinetest.NewSource(bodies(1)...), reporting{pass}, &pipelinetest.Sink{}, pipeline.NodeOptions{Buffer: 1})
	for _, s := range p.Stats() {
		switch s.Name {
		case "st":
			if len(s.Figures) != 1 || s.Figures[0].Name != "limited" || s.Figures[0].Value != 7 {
				t.Fatalf("Stats()[st].Figures = %+v, want one figure limited=7", s.Figures)
			}
		default:
			if s.Figures != nil {
				t.Fatalf("Stats()[%s].Figures = %+v, want none", s.Name, s.Figures)
			}
		}
	}
}

func TestTheDeadLetterSinkReportsDeadLettersByReason(t *testing.T) {
	fail := func(_ context.Context, m *pipeline.Message) (*pipeline.Message, error) {
		switch string(m.Body) {
		case "m0", "m1":
			return nil, pipeline.WithReason(pipeline.ReasonTimeout, errors.New("slow"))
		case "m2":
			return nil, pipeline.WithReason(pipeline.ReasonExpression, errors.New("bad"))
		}
		return m, nil
	}
	p := linear(t, pipelinetest.NewSource(bodies(5)...), pipelinetest.ProcessorFunc(fail), &pipelinetest.Sink{}, pipeline.NodeOptions{Buffer: 1})
	must(t, p.SetDeadLetter("test", &pipelinetest.Sink{}, pipeline.NodeOptions{}))
	must(t, p.Run(context.Background()))
	stats := p.Stats()
	dl := stats[len(stats)-1]
	got := map[string]float64{}
	for _, f := range dl.Figures {
		if f.Scope != "dead_letter" || f.Name != "messages" || f.Label != "reason" || f.Kind != pipeline.Counter {
			t.Fatalf("dead-letter figure = %+v, want dead_letter messages counter by reason", f)
		}
		got[f.LabelValue] = f.Value
	}
	if want := map[string]float64{"timeout": 2, "expression_error": 1}; !maps.Equal(got, want) {
		t.Errorf("dead letters by reason = %v, want %v", got, want)
	}
}
