package expr

import (
	"fmt"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types/ref"
)

// noSuchOverload names the operand types of a "no such overload" error at
// node id, as in "no such overload: string > int", or returns "" when it
// cannot tell. The operand values are not kept by a normal evaluation, so
// it evaluates act again with state tracking, within the same cost limit:
// only failing evaluations pay for it.
func (p *Program) noSuchOverload(act *activation, id int64) string {
	call := findCall(p.ast.NativeRep().Expr(), id)
	if call == nil {
		return ""
	}
	p.stateOnce.Do(func() {
		p.statePrg, _ = p.celEnv.Program(p.ast,
			cel.EvalOptions(cel.OptTrackState), cel.CostLimit(p.costLimit), cel.CostTracking(sizeCost{}))
	})
	if p.statePrg == nil {
		return ""
	}
	_, det, _ := p.statePrg.Eval(act)
	if det == nil || det.State() == nil {
		return ""
	}
	var operands []ast.Expr
	if call.IsMemberFunction() {
		operands = append(operands, call.Target())
	}
	operands = append(operands, call.Args()...)
	names := make([]string, len(operands))
	for i, o := range operands {
		v, ok := det.State().Value(o.ID())
		if !ok || v == nil {
			return ""
		}
		names[i] = typeName(v)
	}
	fn := call.FunctionName()
	sym, isOp := operators.FindReverse(fn)
	switch {
	case isOp && len(names) == 2:
		return fmt.Sprintf("no such overload: %s %s %s", names[0], sym, names[1])
	case isOp && len(names) == 1:
		return fmt.Sprintf("no such overload: %s%s", sym, names[0])
	case call.IsMemberFunction():
		return fmt.Sprintf("no such overload: %s.%s(%s)", names[0], fn, strings.Join(names[1:], ", "))
	}
	return fmt.Sprintf("no such overload: %s(%s)", fn, strings.Join(names, ", "))
}

func typeName(v ref.Val) string { return v.Type().TypeName() }

// findCall returns the call expression with the given id, or nil.
func findCall(root ast.Expr, id int64) ast.CallExpr {
	var found ast.CallExpr
	ast.PreOrderVisit(root, ast.NewExprVisitor(func(e ast.Expr) {
		if found == nil && e.ID() == id && e.Kind() == ast.CallKind {
			found = e.AsCall()
		}
	}))
	return found
}
