package pipeline_test

import (
	"context"
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
