package expr

import (
	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/overloads"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
)

// arithmeticFuncs declares + - * / with the standard overloads (same ids, so
// cost estimation is unchanged) plus int/double and uint/double overloads
// returning double. One binding per operator promotes mixed numeric operands
// and otherwise defers to the operand's trait, as the standard library does.
func arithmeticFuncs() []cel.EnvOption {
	var (
		i, u, d = cel.IntType, cel.UintType, cel.DoubleType
		b, s    = cel.BytesType, cel.StringType
		ts, dur = cel.TimestampType, cel.DurationType
		listA   = cel.ListType(cel.TypeParamType("A"))
	)
	mixed := func(op string) []cel.FunctionOpt {
		return []cel.FunctionOpt{
			cel.Overload("pipe_"+op+"_int64_double", []*cel.Type{i, d}, d),
			cel.Overload("pipe_"+op+"_double_int64", []*cel.Type{d, i}, d),
			cel.Overload("pipe_"+op+"_uint64_double", []*cel.Type{u, d}, d),
			cel.Overload("pipe_"+op+"_double_uint64", []*cel.Type{d, u}, d),
		}
	}
	fn := func(name, op string, std []cel.FunctionOpt, bind cel.FunctionOpt) cel.EnvOption {
		opts := append(std, mixed(op)...)
		return cel.Function(name, append(opts, bind)...)
	}
	return []cel.EnvOption{
		fn(operators.Add, "add", []cel.FunctionOpt{
			cel.Overload(overloads.AddBytes, []*cel.Type{b, b}, b),
			cel.Overload(overloads.AddDouble, []*cel.Type{d, d}, d),
			cel.Overload(overloads.AddDurationDuration, []*cel.Type{dur, dur}, dur),
			cel.Overload(overloads.AddDurationTimestamp, []*cel.Type{dur, ts}, ts),
			cel.Overload(overloads.AddTimestampDuration, []*cel.Type{ts, dur}, ts),
			cel.Overload(overloads.AddInt64, []*cel.Type{i, i}, i),
			cel.Overload(overloads.AddList, []*cel.Type{listA, listA}, listA),
			cel.Overload(overloads.AddString, []*cel.Type{s, s}, s),
			cel.Overload(overloads.AddUint64, []*cel.Type{u, u}, u),
		}, cel.SingletonBinaryBinding(add, traits.AdderType)),
		fn(operators.Subtract, "subtract", []cel.FunctionOpt{
			cel.Overload(overloads.SubtractDouble, []*cel.Type{d, d}, d),
			cel.Overload(overloads.SubtractDurationDuration, []*cel.Type{dur, dur}, dur),
			cel.Overload(overloads.SubtractInt64, []*cel.Type{i, i}, i),
			cel.Overload(overloads.SubtractTimestampDuration, []*cel.Type{ts, dur}, ts),
			cel.Overload(overloads.SubtractTimestampTimestamp, []*cel.Type{ts, ts}, dur),
			cel.Overload(overloads.SubtractUint64, []*cel.Type{u, u}, u),
		}, cel.SingletonBinaryBinding(subtract, traits.SubtractorType)),
		fn(operators.Multiply, "multiply", []cel.FunctionOpt{
			cel.Overload(overloads.MultiplyDouble, []*cel.Type{d, d}, d),
			cel.Overload(overloads.MultiplyInt64, []*cel.Type{i, i}, i),
			cel.Overload(overloads.MultiplyUint64, []*cel.Type{u, u}, u),
		}, cel.SingletonBinaryBinding(multiply, traits.MultiplierType)),
		fn(operators.Divide, "divide", []cel.FunctionOpt{
			cel.Overload(overloads.DivideDouble, []*cel.Type{d, d}, d),
			cel.Overload(overloads.DivideInt64, []*cel.Type{i, i}, i),
			cel.Overload(overloads.DivideUint64, []*cel.Type{u, u}, u),
		}, cel.SingletonBinaryBinding(divide, traits.DividerType)),
	}
}

// promote reports whether exactly one of l and r is a double and the other an
// int or a uint, and if so returns both as doubles.
func promote(l, r ref.Val) (types.Double, types.Double, bool) {
	switch lv := l.(type) {
	case types.Double:
		switch rv := r.(type) {
		case types.Int:
			return lv, types.Double(rv), true
		case types.Uint:
			return lv, types.Double(rv), true
		}
	case types.Int:
		if rv, ok := r.(types.Double); ok {
			return types.Double(lv), rv, true
		}
	case types.Uint:
		if rv, ok := r.(types.Double); ok {
			return types.Double(lv), rv, true
		}
	}
	return 0, 0, false
}

func add(l, r ref.Val) ref.Val {
	if a, b, ok := promote(l, r); ok {
		return a + b
	}
	return l.(traits.Adder).Add(r)
}

func subtract(l, r ref.Val) ref.Val {
	if a, b, ok := promote(l, r); ok {
		return a - b
	}
	return l.(traits.Subtractor).Subtract(r)
}

func multiply(l, r ref.Val) ref.Val {
	if a, b, ok := promote(l, r); ok {
		return a * b
	}
	return l.(traits.Multiplier).Multiply(r)
}

func divide(l, r ref.Val) ref.Val {
	if a, b, ok := promote(l, r); ok {
		return a / b
	}
	return l.(traits.Divider).Divide(r)
}
