package expr

import (
	"fmt"
	"slices"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"
)

// Result type names for WithResult, as `pipe kinds` shows them.
const (
	ResultBool   = "bool"
	ResultString = "string"
	ResultInt    = "int"
	ResultDouble = "double"
)

// WithResult makes Compile reject an expression whose type is known and is
// none of the named CEL types (ResultBool, ...). An expression of type dyn
// is accepted, and its value checked per evaluation by the caller (as
// EvalBool does), unless it is a call none of whose candidate overloads
// returns one of the types: msg.id + 1 is dyn, but no + returns a bool.
func WithResult(names ...string) Option {
	return func(c *config) { c.results = append(c.results, names...) }
}

// WithBoolResult is WithResult(ResultBool), as a filter needs.
func WithBoolResult() Option { return WithResult(ResultBool) }

// checkResult returns the error of an expression whose result can be
// none of want.
func checkResult(env *cel.Env, checked *cel.Ast, want []string) *Error {
	if len(want) == 0 {
		return nil
	}
	got := possibleResults(env, checked)
	for _, t := range got {
		if t.IsExactType(types.DynType) || t.Kind() == types.TypeParamKind || slices.Contains(want, t.String()) {
			return nil
		}
	}
	names := make([]string, len(got))
	for i, t := range got {
		names[i] = t.String()
	}
	slices.Sort(names)
	names = slices.Compact(names)
	return &Error{Line: 1, Column: 1,
		Msg: fmt.Sprintf("expression has type %s, want %s", strings.Join(names, " or "), strings.Join(want, " or "))}
}

// possibleResults is the checked type of the expression or, when it is dyn
// and the expression is a call, the result types of the overloads the
// checker left as candidates.
func possibleResults(env *cel.Env, checked *cel.Ast) []*types.Type {
	t := checked.OutputType()
	if !t.IsExactType(types.DynType) {
		return []*types.Type{t}
	}
	root := checked.NativeRep().Expr()
	ref, ok := checked.NativeRep().ReferenceMap()[root.ID()]
	if !ok || len(ref.OverloadIDs) == 0 || root.Kind() != ast.CallKind {
		return []*types.Type{t}
	}
	fn, ok := env.Functions()[root.AsCall().FunctionName()]
	if !ok {
		return []*types.Type{t}
	}
	var out []*types.Type
	for _, o := range fn.OverloadDecls() {
		if slices.Contains(ref.OverloadIDs, o.ID()) {
			out = append(out, o.ResultType())
		}
	}
	if len(out) == 0 {
		return []*types.Type{t}
	}
	return out
}
