package connectors

import (
	"bytes"
	"math"
	"slices"
	"strconv"

	"github.com/google/cel-go/common"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/parser"

	"github.com/pipe-dsl/pipe/expr"
)

// bodyTemplate writes generate's bodies without building a CEL map per
// message, for the usual shape of message: an object literal with constant
// string keys, such as {"id": seq, "level": seq % 10 == 0 ? "error" :
// "info"}. The keys, the punctuation and the literal values are encoded
// once, in the order the encoder sorts them; per message only the other
// values are evaluated, each by its own program (a bare seq not even that).
// The bytes are those the whole expression encodes to: any value the template
// cannot write exactly as the encoder would, any evaluation error and any
// body near the size limit send that message through the whole expression
// (see write).
type bodyTemplate struct {
	whole *expr.Program
	parts []templatePart
	tail  []byte // after the last value
}

// templatePart is literal text followed by one value.
type templatePart struct {
	text []byte
	prog *expr.Program // nil: the value is seq itself
	// fast, if set, computes the value in Go (see compileScalar); prog
	// takes over whenever it is not sure.
	fast scalarFunc
	kind scalarKind
}

// newBodyTemplate returns the template of prog, or nil if its expression has
// another shape or uses anything but literals, seq and the operators and
// conversions listed in templateCalls (whose cost is bounded, so no cost or
// time limit can apply to the parts that would not to the whole).
func newBodyTemplate(prog *expr.Program) *bodyTemplate {
	p, err := parser.NewParser(parser.Macros(parser.AllMacros...), parser.EnableOptionalSyntax(true), parser.PopulateMacroCalls(true))
	if err != nil {
		return nil
	}
	parsed, errs := p.Parse(common.NewTextSource(prog.Source()))
	if len(errs.GetErrors()) > 0 || parsed.Expr().Kind() != ast.MapKind {
		return nil
	}
	t := &bodyTemplate{whole: prog}
	var text []byte
	if !t.object(parsed.Expr(), parsed.SourceInfo(), &text) {
		return nil
	}
	t.tail = text
	return t
}

// object appends the parts of the map literal e; false if it cannot.
func (t *bodyTemplate) object(e ast.Expr, info *ast.SourceInfo, text *[]byte) bool {
	type entry struct {
		key string
		val ast.Expr
	}
	var entries []entry
	for _, me := range e.AsMap().Entries() {
		m := me.AsMapEntry()
		k := m.Key()
		if m.IsOptional() || k.Kind() != ast.LiteralKind {
			return false
		}
		s, ok := k.AsLiteral().(types.String)
		if !ok {
			return false
		}
		entries = append(entries, entry{string(s), m.Value()})
	}
	slices.SortFunc(entries, func(a, b entry) int { return bytes.Compare([]byte(a.key), []byte(b.key)) })
	*text = append(*text, '{')
	for i, en := range entries {
		if i > 0 {
			if en.key == entries[i-1].key {
				return false // a duplicate key is an error at evaluation
			}
			*text = append(*text, ',')
		}
		k, err := expr.EncodeJSON(en.key)
		if err != nil {
			return false
		}
		*text = append(append(*text, k...), ':')
		if !t.value(en.val, info, text) {
			return false
		}
	}
	*text = append(*text, '}')
	return true
}

// value appends the parts of one value.
func (t *bodyTemplate) value(e ast.Expr, info *ast.SourceInfo, text *[]byte) bool {
	switch {
	case e.Kind() == ast.MapKind:
		return t.object(e, info, text)
	case e.Kind() == ast.IdentKind && e.AsIdent() == "seq":
		t.parts = append(t.parts, templatePart{text: *text})
		*text = nil
		return true
	case !templateSafe(e):
		return false
	}
	src, err := parser.Unparse(e, info)
	if err != nil || !unparsedFaithfully(src, e) {
		return false
	}
	prog, err := expr.Compile(src)
	if err != nil {
		return false
	}
	if e.Kind() == ast.LiteralKind {
		b, err := prog.EvalBody(&expr.Input{})
		if err != nil {
			return false
		}
		*text = append(*text, b...)
		return true
	}
	fast, kind := compileScalar(e)
	t.parts = append(t.parts, templatePart{text: *text, prog: prog, fast: fast, kind: kind})
	*text = nil
	return true
}

// unparsedFaithfully reports whether src parses back to e: Unparse writes
// -(-x) as --x, which parses as x.
func unparsedFaithfully(src string, e ast.Expr) bool {
	p, err := parser.NewParser(parser.EnableOptionalSyntax(true))
	if err != nil {
		return false
	}
	parsed, errs := p.Parse(common.NewTextSource(src))
	return len(errs.GetErrors()) == 0 && sameExpr(parsed.Expr(), e)
}

// sameExpr compares two expressions of the kinds templateSafe accepts. The
// negation of a number literal is the negative literal, as the parser
// reads it.
func sameExpr(a, b ast.Expr) bool {
	a, b = negatedLiteral(a), negatedLiteral(b)
	if a.Kind() != b.Kind() {
		return false
	}
	switch a.Kind() {
	case ast.LiteralKind:
		x, y := a.AsLiteral(), b.AsLiteral()
		if fx, ok := x.(types.Double); ok {
			fy, ok := y.(types.Double)
			return ok && math.Float64bits(float64(fx)) == math.Float64bits(float64(fy))
		}
		return x.Type() == y.Type() && x.Equal(y) == types.True
	case ast.IdentKind:
		return a.AsIdent() == b.AsIdent()
	case ast.ListKind:
		return sameExprs(a.AsList().Elements(), b.AsList().Elements()) && len(b.AsList().OptionalIndices()) == 0
	case ast.CallKind:
		x, y := a.AsCall(), b.AsCall()
		return x.FunctionName() == y.FunctionName() && !x.IsMemberFunction() && !y.IsMemberFunction() && sameExprs(x.Args(), y.Args())
	}
	return false
}

// negatedLiteral returns -(n) for a number literal n as the literal -n,
// and any other expression as it is.
func negatedLiteral(e ast.Expr) ast.Expr {
	if e.Kind() != ast.CallKind || e.AsCall().FunctionName() != operators.Negate || len(e.AsCall().Args()) != 1 {
		return e
	}
	arg := e.AsCall().Args()[0]
	if arg.Kind() != ast.LiteralKind {
		return e
	}
	var f ast.ExprFactory = ast.NewExprFactory()
	switch l := arg.AsLiteral().(type) {
	case types.Int:
		if l != math.MinInt64 {
			return f.NewLiteral(e.ID(), -l)
		}
	case types.Double:
		return f.NewLiteral(e.ID(), -l)
	}
	return e
}

func sameExprs(a, b []ast.Expr) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !sameExpr(a[i], b[i]) {
			return false
		}
	}
	return true
}

// templateCalls are the functions a templated value may call: operators and
// conversions of scalars, each bounded in cost by its operands.
var templateCalls = map[string]bool{
	operators.Conditional: true, operators.LogicalAnd: true, operators.LogicalOr: true, operators.LogicalNot: true,
	operators.Equals: true, operators.NotEquals: true, operators.Less: true, operators.LessEquals: true,
	operators.Greater: true, operators.GreaterEquals: true, operators.Add: true, operators.Subtract: true,
	operators.Multiply: true, operators.Divide: true, operators.Modulo: true, operators.Negate: true,
	"int": true, "uint": true, "double": true, "string": true, "bool": true,
}

// templateSafe reports whether e uses only literals, seq, list literals and
// templateCalls.
func templateSafe(e ast.Expr) bool {
	ok := true
	ast.PostOrderVisit(e, ast.NewExprVisitor(func(e ast.Expr) {
		switch e.Kind() {
		case ast.LiteralKind:
		case ast.ListKind:
			ok = ok && len(e.AsList().OptionalIndices()) == 0
		case ast.IdentKind:
			ok = ok && e.AsIdent() == "seq"
		case ast.CallKind:
			c := e.AsCall()
			ok = ok && !c.IsMemberFunction() && templateCalls[c.FunctionName()]
		default:
			ok = false
		}
	}))
	return ok
}

// write returns the body of message seq, as the whole expression's
// EvalBody would, in a new slice of capacity at least size.
func (t *bodyTemplate) write(seq int64, size int) ([]byte, error) {
	buf := make([]byte, 0, size)
	in := expr.Input{Seq: seq}
	for i := range t.parts {
		p := &t.parts[i]
		buf = append(buf, p.text...)
		if p.prog == nil {
			buf = strconv.AppendInt(buf, seq, 10)
			continue
		}
		if p.fast != nil {
			if v, ok := p.fast(seq); ok {
				if b, ok := appendScalarKind(buf, v, p.kind); ok {
					buf = b
					continue
				}
			}
		}
		v, err := p.prog.Eval(&in)
		if err != nil {
			return t.whole.EvalBody(&in)
		}
		var ok bool
		if buf, ok = appendScalar(buf, v); !ok {
			b, err := expr.EncodeJSON(v)
			if err != nil {
				return t.whole.EvalBody(&in)
			}
			buf = append(buf, b...)
		}
		if len(buf) > expr.MaxValueSize/2 {
			return t.whole.EvalBody(&in)
		}
	}
	return append(buf, t.tail...), nil
}

// appendScalar appends v as the encoder would, for the common scalars it
// can write the same way; false for any other value.
func appendScalar(buf []byte, v ref.Val) ([]byte, bool) {
	switch v := v.(type) {
	case types.Int:
		return strconv.AppendInt(buf, int64(v), 10), true
	case types.Bool:
		return strconv.AppendBool(buf, bool(v)), true
	case types.String:
		return appendString(buf, string(v))
	case types.Double:
		return appendDouble(buf, float64(v))
	case types.Null:
		return append(buf, "null"...), true
	}
	return buf, false
}

// appendString appends s quoted, for strings of printable ASCII without
// quotes or backslashes, which the encoder writes as they are.
func appendString(buf []byte, s string) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return buf, false
		}
	}
	buf = append(buf, '"')
	buf = append(buf, s...)
	return append(buf, '"'), true
}

// appendDouble appends f as the encoder does where it uses plain decimals.
func appendDouble(buf []byte, f float64) ([]byte, bool) {
	if abs := math.Abs(f); math.IsInf(f, 0) || math.IsNaN(f) || abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		return buf, false
	}
	if f == 0 {
		f = 0 // no -0, as the encoder
	}
	return strconv.AppendFloat(buf, f, 'f', -1, 64), true
}
