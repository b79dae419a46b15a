package expr

import (
	"math"

	"github.com/google/cel-go/common"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/google/cel-go/interpreter"
)

// sizeCost charges a call that builds a string, bytes, list or map by the
// size of what it read and built, as cel-go charges add_string: a tenth of
// a unit per element (common.StringTraversalCostFactor). cel-go charges
// only the calls whose overload the checker resolved to one; pipe's +
// (arith.go) over dyn operands, and the strings extension (replace, join,
// split, ...), would otherwise cost 1 whatever they allocate. So the memory
// one evaluation allocates in strings and lists is bounded by its cost
// limit: about 10 bytes (elements) per unit.
//
// Calls whose overload has a tracker of its own (the lists, math and
// encoders extensions) keep it: cel-go consults those first.
type sizeCost struct{}

var _ interpreter.ActualCostEstimator = sizeCost{}

// CallCost returns nil, leaving the call to cel-go's default, unless the
// result is a sized value.
func (sizeCost) CallCost(_, _ string, args []ref.Val, result ref.Val) *uint64 {
	if !sized(result) {
		return nil
	}
	var n uint64
	for i, a := range args {
		if _, ok := a.(traits.MutableLister); ok && i == 0 {
			// The accumulator of a comprehension (map, filter): appended to
			// in place, so only the appended elements are new.
			continue
		}
		n += valueSize(a)
	}
	if _, ok := firstArg(args).(traits.MutableLister); !ok {
		n += valueSize(result)
	}
	cost := 1 + uint64(math.Ceil(float64(n)*common.StringTraversalCostFactor))
	return &cost
}

func firstArg(args []ref.Val) ref.Val {
	if len(args) == 0 {
		return nil
	}
	return args[0]
}

// sized reports whether v is a string, bytes, list or map.
func sized(v ref.Val) bool {
	switch v.(type) {
	case types.String, types.Bytes, traits.Lister, traits.Mapper:
		return true
	}
	return false
}

// valueSize is the size CEL's size() gives a string (code points), bytes,
// list or map, and 1 for any other value.
func valueSize(v ref.Val) uint64 {
	switch v := v.(type) {
	case types.String:
		return uint64(len(v)) // bytes: an upper bound of code points, O(1)
	case types.Bytes:
		return uint64(len(v))
	case traits.Sizer:
		if n, ok := v.Size().(types.Int); ok && n > 0 {
			return uint64(n)
		}
	}
	return 1
}
