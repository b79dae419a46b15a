package expr

import (
	"fmt"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/google/cel-go/ext"
	"github.com/google/cel-go/interpreter/functions"
)

// boundedFormat redefines the strings extension's format to refuse, before
// formatting, arguments whose rendering could exceed MaxValueSize: a list
// of 2,000 references to one 20,000-character string costs little to build
// and renders to 40 MB. The formatting itself is the extension's own,
// taken from an environment holding only it.
func boundedFormat() ([]cel.EnvOption, error) {
	base, err := cel.NewCustomEnv(ext.Strings())
	if err != nil {
		return nil, err
	}
	bindings, err := base.Functions()["format"].Bindings()
	if err != nil {
		return nil, err
	}
	var format functions.FunctionOp
	for _, b := range bindings {
		if b.Operator == "string_format" {
			format = b.Function
		}
	}
	if format == nil {
		return nil, fmt.Errorf("the strings extension has no string_format")
	}
	return []cel.EnvOption{cel.Function("format",
		cel.MemberOverload("string_format", []*cel.Type{cel.StringType, cel.ListType(cel.DynType)}, cel.StringType,
			cel.FunctionBinding(func(args ...ref.Val) ref.Val {
				if len(args) == 2 && renderBound(args[0], 0)+renderBound(args[1], 0) > MaxValueSize {
					return types.WrapErr(ErrValueTooLarge)
				}
				return format(args...)
			})))}, nil
}

// maxScalarRender bounds the rendering of one scalar, a double at the
// extension's largest precision included.
const maxScalarRender = 512

// renderBound is an upper bound of the bytes format writes for v; it stops
// counting once past MaxValueSize.
func renderBound(v ref.Val, depth int) int64 {
	switch v := v.(type) {
	case types.String: // %x writes two bytes for one
		return 2*int64(len(v)) + 2
	case types.Bytes:
		return 2*int64(len(v)) + 2
	case traits.Lister:
		if depth > MaxDepth {
			return MaxValueSize + 1
		}
		n := int64(2)
		for it := v.Iterator(); it.HasNext() == types.True && n <= MaxValueSize; {
			n += renderBound(it.Next(), depth+1) + 2
		}
		return n
	case traits.Mapper:
		if depth > MaxDepth {
			return MaxValueSize + 1
		}
		n := int64(2)
		for it := v.Iterator(); it.HasNext() == types.True && n <= MaxValueSize; {
			k := it.Next()
			n += renderBound(k, depth+1) + renderBound(v.Get(k), depth+1) + 4
		}
		return n
	}
	return maxScalarRender
}
