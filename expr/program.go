package expr

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/interpreter"
)

// ErrCostLimit is the cause of an evaluation stopped at the cost limit.
var ErrCostLimit = errors.New("expression cost limit exceeded")

// Input is what one evaluation sees. The zero value is an empty body, no
// metadata and sequence number 0.
type Input struct {
	// Raw is the message body, read as JSON only if the expression reads msg.
	Raw []byte
	// Meta is the message metadata; nil reads as an empty map.
	Meta map[string]string
	// Seq is the sequence number, the value of seq.
	Seq int64
	// Decoded, if non-nil, is the decoded body, as DecodeJSON(Raw) would
	// return it; evaluation uses it instead of parsing Raw. An evaluation
	// that decodes Raw whole stores the result here, so a later stage given
	// the same Input does not parse Raw again. An evaluation that decodes
	// only some fields leaves it nil. Decoded may also hold an *Object of
	// Raw (a message's cached form); evaluation moves it to Object.
	Decoded any
	// Object, if non-nil, is ScanObject(Raw); an evaluation that reads
	// only some fields of msg decodes them from it instead of scanning Raw.
	// Such an evaluation stores its scan here, so a later stage given the
	// same Input (or a map patching Raw) does not scan Raw again.
	Object *Object
	// Vars holds the values of the variables declared with WithVariables,
	// as DecodeJSON returns values (or int64, string, ...).
	Vars map[string]any
}

// Program is a compiled expression. It is safe for concurrent use by many
// goroutines.
type Program struct {
	src       string
	ast       *cel.Ast
	prg       cel.Program
	costLimit uint64
	// timeLimit is the time limit of a program whose cost is tracked, 0
	// for any other.
	timeLimit time.Duration
	access    msgAccess
	// env holds the environment values the expression reads (env.NAME).
	env    map[string]string
	states sync.Pool // *evalState
	// celEnv compiled the program; statePrg, built on the first "no such
	// overload" error, evaluates it again to name the operand types.
	celEnv    *cel.Env
	stateOnce sync.Once
	statePrg  cel.Program
}

// minKeptScan is the smallest body an evaluation scans with ScanObject
// (and leaves the scan in Input.Object); a smaller one is cheaper to scan
// again than to keep the scan of, and is read with decodeFields.
const minKeptScan = 256

// evalState is the per-evaluation scratch a Program reuses.
type evalState struct {
	act activation
	// in is a copy of the caller's Input, so that the caller's does not
	// escape to the heap (one allocation per evaluation otherwise).
	in     Input
	fields map[string]any // the decoded fields, for msgFields programs
}

func (p *Program) init() {
	n := len(p.access.fields)
	p.states.New = func() any {
		return &evalState{fields: make(map[string]any, n)}
	}
}

// Source returns the expression as given to Compile.
func (p *Program) Source() string { return p.src }

// ResultType returns the type the checker inferred for the result, such as
// "int", "string", "bool" or "dyn" when it is known only at evaluation
// (anything read from msg). Stages use it to reject, at compile time, an
// expression whose known type cannot work.
func (p *Program) ResultType() string { return p.ast.OutputType().String() }

// UsesMsg reports whether the expression reads msg, and so whether
// evaluation reads Input.Raw as JSON.
func (p *Program) UsesMsg() bool { return p.access.use != msgUnused }

// Eval evaluates the program on in. It never panics. The error is non-nil
// exactly when the value is nil: a *SyntaxError (wrapped) if the expression
// reads msg and Raw is not valid JSON, an *Error wrapping ErrCostLimit,
// ErrTimeLimit or ErrValueTooLarge if a limit was reached, or an *Error at
// the failing subexpression for any other runtime error (no such key,
// overflow, division by zero, no such overload: string > int, ...). No error
// text contains an environment value the expression read (WithEnv).
func (p *Program) Eval(in *Input) (ref.Val, error) {
	st := p.states.Get().(*evalState)
	defer p.release(st)
	st.in = *in
	st.act.in, st.act.env = &st.in, p.env
	err := p.bindMsg(st, &st.in)
	in.Decoded, in.Object = st.in.Decoded, st.in.Object
	if err != nil {
		return nil, err
	}
	out, err := p.run(&st.act)
	if err != nil {
		e := p.evalError(err)
		var celErr *types.Err
		if ee, ok := e.(*Error); ok && errors.As(err, &celErr) && strings.HasPrefix(ee.Msg, "no such overload") {
			if msg := p.noSuchOverload(&st.act, celErr.NodeID()); msg != "" {
				ee.Msg = msg
			}
		}
		if p.env != nil {
			if ee, ok := e.(*Error); ok {
				// The cause keeps its identity unless it quotes a value.
				ee.Msg = p.scrub(ee.Msg)
				if ee.Err != nil && p.scrub(ee.Err.Error()) != ee.Err.Error() {
					ee.Err = errors.New(p.scrub(ee.Err.Error()))
				}
			}
		}
		return nil, e
	}
	return out, nil
}

// run evaluates the program on act, within the time limit if it has one.
func (p *Program) run(act *activation) (ref.Val, error) {
	if p.timeLimit <= 0 {
		out, _, err := p.prg.Eval(act)
		return out, err
	}
	ctx, cancel := context.WithTimeoutCause(context.Background(), p.timeLimit, ErrTimeLimit)
	defer cancel()
	out, _, err := p.prg.ContextEval(ctx, act)
	return out, err
}

func (p *Program) release(st *evalState) {
	clear(st.fields)
	st.act, st.in = activation{}, Input{}
	p.states.Put(st)
}

// bindMsg sets the value msg resolves to.
func (p *Program) bindMsg(st *evalState, in *Input) error {
	if o, ok := in.Decoded.(*Object); ok {
		in.Decoded = nil
		if in.Object == nil {
			in.Object = o
		}
	}
	switch {
	case p.access.use == msgUnused:
		return nil
	case in.Decoded != nil:
		st.act.msg = in.Decoded
		return nil
	case p.access.use == msgFields:
		if in.Object == nil && len(in.Raw) >= minKeptScan {
			in.Object = ScanObject(in.Raw)
		}
		if in.Object != nil {
			if err := in.Object.decodeFields(p.access.fields, st.fields); err != nil {
				return fmt.Errorf("decoding msg: %w", err)
			}
			st.act.msg = st.fields
			return nil
		}
		// Not a valid object: decode for the value or the precise error.
		isObject, err := decodeFields(in.Raw, p.access.fields, st.fields)
		if err != nil {
			return fmt.Errorf("decoding msg: %w", err)
		}
		if isObject {
			st.act.msg = st.fields
			return nil
		}
	}
	v, err := DecodeJSON(in.Raw)
	if err != nil {
		return fmt.Errorf("decoding msg: %w", err)
	}
	in.Decoded = v
	st.act.msg = v
	return nil
}

func (p *Program) evalError(err error) error {
	var cancelled interpreter.EvalCancelledError
	if errors.As(err, &cancelled) && cancelled.Cause == interpreter.CostLimitExceeded {
		return &Error{Msg: fmt.Sprintf("%v (limit %d)", ErrCostLimit, p.costLimit), Err: ErrCostLimit}
	}
	if errors.Is(err, ErrTimeLimit) {
		return &Error{Msg: fmt.Sprintf("%v (limit %v)", ErrTimeLimit, p.timeLimit), Err: ErrTimeLimit}
	}
	var celErr *types.Err
	if errors.As(err, &celErr) {
		loc := p.ast.NativeRep().SourceInfo().GetStartLocation(celErr.NodeID())
		return newError(loc, err.Error(), err)
	}
	return &Error{Msg: err.Error(), Err: err}
}

// EvalBool evaluates the program and returns its bool result; any other
// result type is an error.
func (p *Program) EvalBool(in *Input) (bool, error) {
	out, err := p.Eval(in)
	if err != nil {
		return false, err
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("expression %q returned %s, want bool", p.src, out.Type().TypeName())
	}
	return bool(b), nil
}

// EvalJSON evaluates the program and encodes the result with EncodeJSON. It
// also returns the body decoded as DecodeJSON(body) would, for the next
// stage's Input.Decoded; decoded is nil when the body is null.
//
// Most callers that only pass the body on want [Program.EvalBody], which
// does not decode it: the next reader decodes only what it reads.
func (p *Program) EvalJSON(in *Input) (body []byte, decoded any, err error) {
	body, err = p.EvalBody(in)
	if err != nil {
		return nil, nil, err
	}
	decoded, err = DecodeJSON(body)
	if err != nil {
		return nil, nil, fmt.Errorf("decoding result: %w", err)
	}
	return body, decoded, nil
}

// EvalBody evaluates the program and encodes the result with EncodeJSON,
// with the errors of [Program.EvalJSON]. The body is a new slice the caller
// owns.
func (p *Program) EvalBody(in *Input) ([]byte, error) {
	out, err := p.Eval(in)
	if err != nil {
		return nil, err
	}
	e := encoderPool.Get().(*encoder)
	defer e.release()
	e.limit = MaxValueSize
	if err := e.cel(out); err != nil {
		if errors.Is(err, ErrValueTooLarge) {
			return nil, &Error{Msg: err.Error(), Err: err}
		}
		return nil, fmt.Errorf("encoding result: %w", err)
	}
	return slices.Clone(e.buf), nil
}

// activation resolves the four variables, and Input.Vars, for one evaluation.
type activation struct {
	in  *Input
	msg any
	// msgVal is msg as a CEL value, converted on first use: a
	// comprehension resolves msg once per iteration.
	msgVal any
	env    map[string]string
}

var _ interpreter.Activation = (*activation)(nil)

func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case varMsg:
		if a.msgVal == nil {
			a.msgVal = celValue(a.msg)
		}
		return a.msgVal, true
	case varMeta:
		if a.in.Meta == nil {
			return emptyMeta, true
		}
		return a.in.Meta, true
	case varRaw:
		return types.Bytes(a.in.Raw), true
	case varSeq:
		return types.Int(a.in.Seq), true
	case varEnv:
		if a.env == nil {
			return emptyMeta, true
		}
		return a.env, true
	}
	v, ok := a.in.Vars[name]
	return celValue(v), ok
}

func (a *activation) Parent() interpreter.Activation { return nil }

var emptyMeta = map[string]string{}

// EvalNative evaluates the program and returns its result as DecodeJSON
// would decode EncodeJSON(result): map[string]any, []any, string, int64,
// uint64, BigInt, float64, bool or nil.
func (p *Program) EvalNative(in *Input) (any, error) {
	_, v, err := p.EvalJSON(in)
	return v, err
}
