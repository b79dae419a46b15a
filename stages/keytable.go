package stages

import (
	"context"
	"time"

	"github.com/pipe-dsl/pipe/expr"
	"github.com/pipe-dsl/pipe/pipeline"
)

// keyOf evaluates a key expression on m and returns the JSON encoding of the
// value, so that 1 and "1" are different keys and a map key is the same
// whatever order its fields arrived in.
func keyOf(p *expr.Program, m *pipeline.Message) (string, error) {
	in := input(m)
	v, err := p.Eval(&in)
	keepDecoded(m, &in)
	if err != nil {
		return "", evalError(err)
	}
	b, err := expr.EncodeJSON(v)
	if err != nil {
		return "", evalError(err)
	}
	return string(b), nil
}

// sleep waits d on clock, returning early with ctx's error if ctx is done
// first.
func sleep(ctx context.Context, clock pipeline.Clock, d time.Duration) error {
	t := clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
