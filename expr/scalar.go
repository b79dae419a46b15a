package expr

import (
	"fmt"
	"slices"

	"github.com/google/cel-go/common/types"
)

// EvalScalar is EvalNative for expressions that usually yield an integer,
// a string or null, such as a lookup key: those are returned without the
// JSON round trip EvalNative makes, anything else as EvalNative returns it.
func (p *Program) EvalScalar(in *Input) (any, error) {
	out, err := p.Eval(in)
	if err != nil {
		return nil, err
	}
	switch v := out.(type) {
	case types.Int:
		return int64(v), nil
	case types.String:
		return string(v), nil
	case types.Null:
		return nil, nil
	}
	e := encoderPool.Get().(*encoder)
	defer e.release()
	if err := e.cel(out); err != nil {
		return nil, fmt.Errorf("encoding result: %w", err)
	}
	return DecodeJSON(slices.Clone(e.buf))
}
