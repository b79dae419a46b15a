package expr

import (
	"fmt"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/ext"
)

// varError is the one variable of an error predicate.
const varError = "error"

var (
	errEnvOnce sync.Once
	errEnvVal  *cel.Env
	errEnvErr  error
)

// ErrorPredicate is a compiled boolean expression over a failed call's
// error, such as a retry policy's retry_on. It reads one variable:
//
//	error  map(string, dyn)  {"kind": string, "status": int, "message": string}
//
// It is safe for concurrent use.
type ErrorPredicate struct {
	src string
	prg cel.Program
}

// CompileErrorPredicate parses and type-checks src in the error environment
// (the standard library and the strings extension). Like Compile it does no
// I/O, and on failure the error is an Errors with positions within src.
func CompileErrorPredicate(src string) (*ErrorPredicate, error) {
	errEnvOnce.Do(func() {
		errEnvVal, errEnvErr = cel.NewEnv(
			cel.Variable(varError, cel.MapType(cel.StringType, cel.DynType)),
			cel.CrossTypeNumericComparisons(true),
			ext.Strings(),
		)
	})
	if errEnvErr != nil {
		return nil, fmt.Errorf("building CEL error environment: %w", errEnvErr)
	}
	ast, iss := errEnvVal.Compile(src)
	if iss.Err() != nil {
		errs := make(Errors, 0, len(iss.Errors()))
		for _, e := range iss.Errors() {
			errs = append(errs, newError(e.Location, hintUndeclared(e.Message, []string{varError}), nil))
		}
		return nil, errs
	}
	if e := checkResult(errEnvVal, ast, []string{ResultBool}); e != nil {
		return nil, Errors{e}
	}
	prg, err := errEnvVal.Program(ast, cel.EvalOptions(cel.OptOptimize), cel.CostLimit(DefaultCostLimit))
	if err != nil {
		return nil, Errors{{Line: 1, Column: 1, Msg: err.Error()}}
	}
	return &ErrorPredicate{src: src, prg: prg}, nil
}

// Source returns the expression as given to CompileErrorPredicate.
func (p *ErrorPredicate) Source() string { return p.src }

// Match evaluates the predicate for an error of the given kind, HTTP-like
// status (0 if none) and message. A runtime error or a non-bool result is
// returned as an error, with false.
func (p *ErrorPredicate) Match(kind string, status int, message string) (bool, error) {
	out, _, err := p.prg.Eval(map[string]any{varError: map[string]any{
		"kind": kind, "status": int64(status), "message": message,
	}})
	if err != nil {
		return false, fmt.Errorf("evaluating %q: %w", p.src, err)
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("expression %q returned %s, want bool", p.src, out.Type().TypeName())
	}
	return bool(b), nil
}
