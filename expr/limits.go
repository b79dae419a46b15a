package expr

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
)

// MaxValueSize bounds, in bytes, any one string an evaluation builds with
// replace, join or format, and the JSON encoding of a result (EvalJSON). Such a
// call is refused before it allocates: the cost limit alone charges a call
// only after it returns.
const MaxValueSize = 16 << 20

// DefaultTimeLimit is the evaluation time limit of a program compiled
// without WithTimeLimit. Only programs whose cost may reach the cost limit
// (comprehensions over msg) are timed; the check runs every
// interruptEvery comprehension iterations.
const DefaultTimeLimit = 250 * time.Millisecond

const interruptEvery = 64

// ErrTimeLimit is the cause of an evaluation stopped at the time limit.
var ErrTimeLimit = errors.New("expression time limit exceeded")

// ErrValueTooLarge is the cause of an evaluation that would build a value
// larger than MaxValueSize.
var ErrValueTooLarge = fmt.Errorf("expression would build a value larger than %d bytes", MaxValueSize)

// boundedStrings redefines the strings extension's replace and join, whose
// result may be far larger than their arguments, to check the result's size
// first. The overload ids and signatures are the extension's, so cel-go
// replaces the bindings in place.
func boundedStrings() []cel.EnvOption {
	s, i, ls := cel.StringType, cel.IntType, cel.ListType(cel.StringType)
	return []cel.EnvOption{
		cel.Function("replace",
			cel.MemberOverload("string_replace_string_string", []*cel.Type{s, s, s}, s,
				cel.FunctionBinding(func(args ...ref.Val) ref.Val {
					return replaceN(args[0], args[1], args[2], -1)
				})),
			cel.MemberOverload("string_replace_string_string_int", []*cel.Type{s, s, s, i}, s,
				cel.FunctionBinding(func(args ...ref.Val) ref.Val {
					n, ok := args[3].(types.Int)
					if !ok {
						return types.MaybeNoSuchOverloadErr(args[3])
					}
					return replaceN(args[0], args[1], args[2], int64(n))
				}))),
		cel.Function("join",
			cel.MemberOverload("list_join", []*cel.Type{ls}, s,
				cel.UnaryBinding(func(list ref.Val) ref.Val { return join(list, "") })),
			cel.MemberOverload("list_join_string", []*cel.Type{ls, s}, s,
				cel.BinaryBinding(func(list, sep ref.Val) ref.Val {
					d, ok := sep.(types.String)
					if !ok {
						return types.MaybeNoSuchOverloadErr(sep)
					}
					return join(list, string(d))
				}))),
	}
}

func replaceN(sv, oldv, newv ref.Val, n int64) ref.Val {
	str, ok1 := sv.(types.String)
	old, ok2 := oldv.(types.String)
	repl, ok3 := newv.(types.String)
	if !ok1 || !ok2 || !ok3 {
		return types.NewErr("no such overload: replace")
	}
	count := int64(strings.Count(string(str), string(old)))
	if old == "" {
		count = int64(utf8.RuneCountInString(string(str))) + 1
	}
	if n >= 0 && n < count {
		count = n
	}
	if int64(len(str))+count*(int64(len(repl))-int64(len(old))) > MaxValueSize {
		return types.WrapErr(ErrValueTooLarge)
	}
	return types.String(strings.Replace(string(str), string(old), string(repl), int(count)))
}

func join(list ref.Val, sep string) ref.Val {
	l, ok := list.(traits.Lister)
	if !ok {
		return types.MaybeNoSuchOverloadErr(list)
	}
	n, _ := l.Size().(types.Int)
	size := int64(0)
	for i := range n {
		s, ok := l.Get(i).(types.String)
		if !ok {
			return types.NewErr("join: invalid input: not a string at index %d", i)
		}
		if size += int64(len(s)) + int64(len(sep)); size > MaxValueSize {
			return types.WrapErr(ErrValueTooLarge)
		}
	}
	var b strings.Builder
	b.Grow(int(size))
	for i := range n {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(string(l.Get(i).(types.String)))
	}
	return types.String(b.String())
}

// full reports ErrValueTooLarge once buf is past the limit. It is checked
// before every value, so buf overshoots the limit by at most one scalar.
// While under the limit, buf grows by doubling up to the limit: append's
// 1.25x growth of large slices would allocate five times the final size.
func (e *encoder) full() error {
	if e.limit <= 0 {
		return nil
	}
	if len(e.buf) > e.limit {
		return fmt.Errorf("encoding result: %w", ErrValueTooLarge)
	}
	if c := cap(e.buf); c-len(e.buf) < 512 && c <= e.limit {
		e.buf = slices.Grow(e.buf, min(max(c, 512), e.limit+512-len(e.buf)))
	}
	return nil
}
