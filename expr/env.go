package expr

import (
	"slices"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/env"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/ext"
)

// The names of the variables every expression may read.
const (
	varMsg  = "msg"
	varMeta = "meta"
	varRaw  = "raw"
	varSeq  = "seq"
)

var (
	envOnce sync.Once
	envVal  *cel.Env
	envErr  error
)

// celEnv returns the one environment all expressions compile in, building it
// on first use. A *cel.Env is safe for concurrent use.
func celEnv() (*cel.Env, error) {
	envOnce.Do(func() { envVal, envErr = newEnv() })
	return envVal, envErr
}

func newEnv() (*cel.Env, error) {
	// The standard + - * / carry a single binding that dispatches on the left
	// operand and rejects mixed numeric operands; they are replaced whole by
	// arithmeticFuncs, which keep the standard overloads and add mixed ones.
	std := &env.LibrarySubset{ExcludeFunctions: []*env.Function{
		{Name: operators.Add},
		{Name: operators.Subtract},
		{Name: operators.Multiply},
		{Name: operators.Divide},
	}}
	opts := []cel.EnvOption{
		cel.StdLib(cel.StdLibSubset(std)),
		cel.Variable(varMsg, cel.DynType),
		cel.Variable(varMeta, cel.MapType(cel.StringType, cel.StringType)),
		cel.Variable(varRaw, cel.BytesType),
		cel.Variable(varSeq, cel.IntType),
		cel.Variable(varEnv, cel.MapType(cel.StringType, cel.StringType)),
		cel.CrossTypeNumericComparisons(true),
		cel.OptionalTypes(),
		ext.Strings(),
		ext.Math(),
		ext.Encoders(),
		ext.Lists(),
		ext.Sets(),
		ext.Bindings(),
	}
	opts = append(opts, arithmeticFuncs()...)
	opts = append(opts, boundedStrings()...)
	format, err := boundedFormat()
	if err != nil {
		return nil, err
	}
	opts = append(opts, format...)
	return cel.NewCustomEnv(opts...)
}

// extended caches the environments of WithVariables by their sorted names.
var extended sync.Map // string -> *cel.Env

// extendedEnv returns base with the named dyn variables added.
func extendedEnv(base *cel.Env, names []string) (*cel.Env, error) {
	names = slices.Compact(slices.Sorted(slices.Values(names)))
	key := strings.Join(names, ",")
	if e, ok := extended.Load(key); ok {
		return e.(*cel.Env), nil
	}
	opts := make([]cel.EnvOption, len(names))
	for i, n := range names {
		opts[i] = cel.Variable(n, cel.DynType)
	}
	e, err := base.Extend(opts...)
	if err != nil {
		return nil, err
	}
	extended.Store(key, e)
	return e, nil
}
