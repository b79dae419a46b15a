package dsl

import (
	"context"

	"github.com/pipe-dsl/pipe/gostreams"
	"github.com/pipe-dsl/pipe/pipeline"
)

// flowKind names the source and sink nodes that stand for a flow's ends.
const flowKind = "go-streams"

// NewFlow compiles a stages-only pipeline file (name, stages list, and
// the other top-level settings; no source or sink) into a go-streams Flow
// and starts it: elements sent to the flow's In pass through the stages and
// come out of Out as JSON bodies. Close In to drain it, then check Err.
func NewFlow(ctx context.Context, file string, src []byte, opts *CompileOptions) (*gostreams.Flow, error) {
	if opts == nil {
		opts = &CompileOptions{}
	}
	o := *opts
	o.flow = true
	c, err := Parse(file, src, &o.Options)
	if err != nil {
		return nil, err
	}
	return gostreams.NewFlow(ctx, func(in pipeline.Source, out pipeline.Sink) (*pipeline.Pipeline, error) {
		o.flowEnds = map[Role]any{pipeline.RoleSource: in, pipeline.RoleSink: out}
		compiled, err := Compile(c, &o)
		if err != nil {
			return nil, err
		}
		return compiled.Pipeline, nil
	})
}
