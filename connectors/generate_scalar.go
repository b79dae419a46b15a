package connectors

import (
	"math"
	"strconv"

	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
)

// scalarKind is the static type of a scalar expression.
type scalarKind uint8

const (
	kindInt scalarKind = iota + 1
	kindDouble
	kindString
	kindBool
)

// scalar is the value of a scalar expression; only the field of its kind is
// set.
type scalar struct {
	i int64
	f float64
	s string
	b bool
}

// scalarFunc evaluates a scalar expression of seq. ok is false when it
// cannot be sure of CEL's answer (an overflow, a division by zero, a
// conversion out of range): the caller then asks CEL.
type scalarFunc func(seq int64) (v scalar, ok bool)

// compileScalar compiles e, a templated value, to Go when it uses only
// int, double, string and bool literals, seq, int and double arithmetic on
// operands of one type, comparisons of one type, &&, ||, !, ?:, double(int),
// int(double) and string(int); nil for any other expression, which CEL keeps
// evaluating. Every operation matches cel-go's for the operands it accepts
// and gives up (ok false) where cel-go would fail, so a result is always
// CEL's.
func compileScalar(e ast.Expr) (scalarFunc, scalarKind) {
	switch e.Kind() {
	case ast.LiteralKind:
		var v scalar
		var k scalarKind
		switch l := e.AsLiteral().(type) {
		case types.Int:
			v.i, k = int64(l), kindInt
		case types.Double:
			v.f, k = float64(l), kindDouble
		case types.String:
			v.s, k = string(l), kindString
		case types.Bool:
			v.b, k = bool(l), kindBool
		default:
			return nil, 0
		}
		return func(int64) (scalar, bool) { return v, true }, k
	case ast.IdentKind:
		if e.AsIdent() != "seq" {
			return nil, 0
		}
		return func(seq int64) (scalar, bool) { return scalar{i: seq}, true }, kindInt
	case ast.CallKind:
	default:
		return nil, 0
	}
	c := e.AsCall()
	if c.IsMemberFunction() {
		return nil, 0
	}
	args := c.Args()
	fs := make([]scalarFunc, len(args))
	ks := make([]scalarKind, len(args))
	for i, a := range args {
		if fs[i], ks[i] = compileScalar(a); fs[i] == nil {
			return nil, 0
		}
	}
	switch name := c.FunctionName(); {
	case len(args) == 1:
		return compileUnary(name, fs[0], ks[0])
	case len(args) == 2 && ks[0] == ks[1]:
		return compileBinary(name, fs[0], fs[1], ks[0])
	case len(args) == 3 && name == operators.Conditional && ks[0] == kindBool && ks[1] == ks[2]:
		cond, a, b := fs[0], fs[1], fs[2]
		return func(seq int64) (scalar, bool) {
			c, ok := cond(seq)
			if !ok {
				return scalar{}, false
			}
			if c.b {
				return a(seq)
			}
			return b(seq)
		}, ks[1]
	}
	return nil, 0
}

func compileUnary(name string, f scalarFunc, k scalarKind) (scalarFunc, scalarKind) {
	switch {
	case name == operators.LogicalNot && k == kindBool:
		return func(seq int64) (scalar, bool) {
			v, ok := f(seq)
			return scalar{b: !v.b}, ok
		}, kindBool
	case name == operators.Negate && k == kindInt:
		return func(seq int64) (scalar, bool) {
			v, ok := f(seq)
			return scalar{i: -v.i}, ok && v.i != math.MinInt64
		}, kindInt
	case name == operators.Negate && k == kindDouble:
		return func(seq int64) (scalar, bool) {
			v, ok := f(seq)
			return scalar{f: -v.f}, ok
		}, kindDouble
	case name == "double" && k == kindInt:
		return func(seq int64) (scalar, bool) {
			v, ok := f(seq)
			return scalar{f: float64(v.i)}, ok
		}, kindDouble
	case name == "int" && k == kindDouble:
		return func(seq int64) (scalar, bool) {
			v, ok := f(seq)
			// Well inside cel-go's range check, which fails outside it.
			return scalar{i: int64(v.f)}, ok && v.f > -9e18 && v.f < 9e18
		}, kindInt
	case name == "string" && k == kindInt:
		return func(seq int64) (scalar, bool) {
			v, ok := f(seq)
			return scalar{s: strconv.FormatInt(v.i, 10)}, ok
		}, kindString
	case (name == "int" && k == kindInt) || (name == "double" && k == kindDouble) ||
		(name == "string" && k == kindString) || (name == "bool" && k == kindBool):
		return f, k
	}
	return nil, 0
}

func compileBinary(name string, a, b scalarFunc, k scalarKind) (scalarFunc, scalarKind) {
	both := func(seq int64) (x, y scalar, ok bool) {
		if x, ok = a(seq); !ok {
			return
		}
		y, ok = b(seq)
		return
	}
	switch name {
	case operators.LogicalAnd, operators.LogicalOr:
		if k != kindBool {
			return nil, 0
		}
		// Left to right; a left operand that decides is CEL's answer
		// even when the right one would fail, and a failing left one
		// goes to CEL.
		or := name == operators.LogicalOr
		return func(seq int64) (scalar, bool) {
			x, ok := a(seq)
			if !ok || x.b == or {
				return x, ok
			}
			return b(seq)
		}, kindBool
	case operators.Equals, operators.NotEquals, operators.Less, operators.LessEquals, operators.Greater, operators.GreaterEquals:
		cmp := compare(name)
		if cmp == nil || (k == kindBool && name != operators.Equals && name != operators.NotEquals) {
			return nil, 0
		}
		return func(seq int64) (scalar, bool) {
			x, y, ok := both(seq)
			if !ok {
				return scalar{}, false
			}
			var c int
			switch k {
			case kindInt:
				c = cmpOrdered(x.i, y.i)
			case kindString:
				c = cmpOrdered(x.s, y.s)
			case kindBool:
				if x.b != y.b {
					c = 1
				}
			case kindDouble:
				if x.f != x.f || y.f != y.f {
					return scalar{}, false // NaN: left to CEL
				}
				c = cmpOrdered(x.f, y.f)
			}
			return scalar{b: cmp(c)}, true
		}, kindBool
	}
	switch k {
	case kindInt:
		var op func(x, y int64) (int64, bool)
		switch name {
		case operators.Add:
			op = func(x, y int64) (int64, bool) {
				r := x + y
				return r, (r > x) == (y > 0)
			}
		case operators.Subtract:
			op = func(x, y int64) (int64, bool) {
				r := x - y
				return r, (r < x) == (y > 0)
			}
		case operators.Multiply:
			op = func(x, y int64) (int64, bool) {
				if x == 0 || y == 0 {
					return 0, true
				}
				r := x * y
				return r, r/y == x && !(x == -1 && y == math.MinInt64) && !(y == -1 && x == math.MinInt64)
			}
		case operators.Divide:
			op = func(x, y int64) (int64, bool) {
				if y == 0 || (y == -1 && x == math.MinInt64) {
					return 0, false
				}
				return x / y, true
			}
		case operators.Modulo:
			op = func(x, y int64) (int64, bool) {
				if y == 0 || (y == -1 && x == math.MinInt64) {
					return 0, false
				}
				return x % y, true
			}
		default:
			return nil, 0
		}
		return func(seq int64) (scalar, bool) {
			x, y, ok := both(seq)
			if !ok {
				return scalar{}, false
			}
			r, ok := op(x.i, y.i)
			return scalar{i: r}, ok
		}, kindInt
	case kindDouble:
		var op func(x, y float64) float64
		switch name {
		case operators.Add:
			op = func(x, y float64) float64 { return x + y }
		case operators.Subtract:
			op = func(x, y float64) float64 { return x - y }
		case operators.Multiply:
			op = func(x, y float64) float64 { return x * y }
		case operators.Divide:
			op = func(x, y float64) float64 { return x / y }
		default:
			return nil, 0
		}
		return func(seq int64) (scalar, bool) {
			x, y, ok := both(seq)
			return scalar{f: op(x.f, y.f)}, ok
		}, kindDouble
	}
	return nil, 0
}

func cmpOrdered[T int64 | float64 | string](x, y T) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// compare returns the test of a comparison operator on the result of
// cmpOrdered.
func compare(name string) func(c int) bool {
	switch name {
	case operators.Equals:
		return func(c int) bool { return c == 0 }
	case operators.NotEquals:
		return func(c int) bool { return c != 0 }
	case operators.Less:
		return func(c int) bool { return c < 0 }
	case operators.LessEquals:
		return func(c int) bool { return c <= 0 }
	case operators.Greater:
		return func(c int) bool { return c > 0 }
	case operators.GreaterEquals:
		return func(c int) bool { return c >= 0 }
	}
	return nil
}

// appendScalarKind appends v of kind k as the encoder would; false when it
// cannot be sure (the caller then encodes through CEL).
func appendScalarKind(buf []byte, v scalar, k scalarKind) ([]byte, bool) {
	switch k {
	case kindInt:
		return strconv.AppendInt(buf, v.i, 10), true
	case kindDouble:
		return appendDouble(buf, v.f)
	case kindString:
		return appendString(buf, v.s)
	case kindBool:
		return strconv.AppendBool(buf, v.b), true
	}
	return buf, false
}
