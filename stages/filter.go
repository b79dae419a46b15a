package stages

import (
	"context"
	"errors"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/expr"
	"github.com/pipe-dsl/pipe/pipeline"
)

type filterConfig struct {
	Condition *expr.Program `pipe:"condition,required" result:"bool" desc:"CEL predicate over msg, meta and raw. Messages for which it is false are dropped and acked." example:"msg.level == \"error\""`
}

func init() {
	component.Register(component.Stage("filter",
		"Keeps the messages for which a CEL condition is true; drops and acks the rest.",
		filterConfig{}, newFilter, component.WithShorthand("condition"),
		component.WithBatching(component.BatchesReject)))
}

// filter keeps messages whose condition is true.
//
//	in  -- a -- b -- c -- d --
//	        [ cond(b), cond(d) false ]
//	out -- a ------- c -------
type filter struct{ cond *expr.Program }

var _ pipeline.Processor = (*filter)(nil)

func newFilter(c *filterConfig, _ component.Env) (any, error) {
	return &filter{cond: c.Condition}, nil
}

func (f *filter) Process(_ context.Context, m *pipeline.Message) (*pipeline.Message, error) {
	if m.Batch() != nil {
		return nil, errBatch("filter")
	}
	in := input(m)
	ok, err := f.cond.EvalBool(&in)
	if err == nil && !ok {
		if in.Object != nil && in.Object != m.Decoded() {
			in.Object.Release() // this evaluation's own scan, of a message dropped
		}
		return nil, nil
	}
	keepDecoded(m, &in)
	if err != nil {
		return nil, evalError(err)
	}
	return m, nil
}

// input is the expression input for m, reusing a decoded body from an
// earlier stage.
// The message's cached form is either the decoded body (Input.Decoded) or
// its one scan (Input.Object).
func input(m *pipeline.Message) expr.Input {
	in := expr.Input{Raw: m.Body, Meta: m.Meta}
	if o, ok := m.Decoded().(*expr.Object); ok {
		in.Object = o
	} else {
		in.Decoded = m.Decoded()
	}
	return in
}

// keepDecoded caches for later stages a body the evaluation decoded, or
// else the scan it made of it.
func keepDecoded(m *pipeline.Message, in *expr.Input) {
	cached := m.Decoded()
	_, scanned := cached.(*expr.Object)
	switch {
	case in.Decoded != nil && (cached == nil || scanned):
		m.SetDecoded(in.Decoded)
	case in.Object != nil && cached == nil:
		m.SetDecoded(in.Object)
	}
}

// evalError gives an evaluation error its dead-letter reason.
func evalError(err error) error {
	var syntax *expr.SyntaxError
	if errors.As(err, &syntax) {
		return pipeline.WithReason(pipeline.ReasonInvalidPayload, err)
	}
	return pipeline.WithReason(pipeline.ReasonExpression, err)
}

func errBatch(kind string) error {
	return pipeline.WithReason(pipeline.ReasonInvalidPayload,
		errors.New(kind+" does not take batches: place it before the batch stage"))
}
