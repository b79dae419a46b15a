package expr

import (
	"fmt"
	"strings"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
	"github.com/google/cel-go/common"
)

// DefaultCostLimit is the evaluation cost limit of a program compiled
// without WithCostLimit. A cost unit is roughly one operation; simple
// filters and maps cost well under 100.
const DefaultCostLimit = 1_000_000

// Option configures Compile.
type Option func(*config)

type config struct {
	costLimit  uint64
	timeLimit  time.Duration
	results    []string
	lookup     func(string) (string, bool)
	fullDecode bool
	vars       []string
}

// WithCostLimit sets the cost at which an evaluation stops with ErrCostLimit.
func WithCostLimit(limit uint64) Option {
	return func(c *config) { c.costLimit = limit }
}

// WithTimeLimit sets the time after which an evaluation whose cost is
// tracked (see Compile) stops with ErrTimeLimit; 0 means no time limit.
func WithTimeLimit(d time.Duration) Option {
	return func(c *config) { c.timeLimit = d }
}

// WithVariables declares more variables of type dyn, besides msg, meta, raw
// and seq, for an expression that its stage evaluates with Input.Vars set,
// such as the response of an http stage's merge.
func WithVariables(names ...string) Option {
	return func(c *config) { c.vars = append(c.vars, names...) }
}

// withFullDecode turns off field-wise decoding; tests and benchmarks compare
// against it.
func withFullDecode() Option {
	return func(c *config) { c.fullDecode = true }
}

// Error is an error at a position in an expression's source.
type Error struct {
	// Line and Column are 1-based; Column counts Unicode code points. Both
	// are 0 when the position is unknown.
	Line, Column int
	Msg          string
	// Err is the underlying error of an evaluation error, nil for a compile error.
	Err error
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return e.Msg
	}
	return fmt.Sprintf("%d:%d: %s", e.Line, e.Column, e.Msg)
}

func (e *Error) Unwrap() error { return e.Err }

// Errors is every error Compile found, in source order. errors.As finds a
// single *Error in it.
type Errors []*Error

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

func (es Errors) Unwrap() []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errs
}

// Compile parses and type-checks src in the package's one environment. It
// does no I/O. On failure the error is an Errors holding every problem with
// its position within src.
//
// Compile estimates the cost of the expression. It rejects one whose minimum
// cost exceeds the cost limit, since every evaluation of it would fail, and
// tracks cost at run time only for one whose maximum might exceed it
// (typically comprehensions over msg); evaluation of any other is bounded
// already.
func Compile(src string, opts ...Option) (*Program, error) {
	cfg := config{costLimit: DefaultCostLimit, timeLimit: DefaultTimeLimit}
	for _, o := range opts {
		o(&cfg)
	}
	env, err := celEnv()
	if err == nil && len(cfg.vars) > 0 {
		env, err = extendedEnv(env, cfg.vars)
	}
	if err != nil {
		return nil, fmt.Errorf("building CEL environment: %w", err)
	}
	ast, iss := env.Compile(src)
	if iss.Err() != nil {
		errs := make(Errors, 0, len(iss.Errors()))
		vars := declaredVars(cfg.vars)
		for _, e := range iss.Errors() {
			errs = append(errs, newError(e.Location, hintUndeclared(e.Message, vars), nil))
		}
		return nil, errs
	}
	if e := checkResult(env, ast, cfg.results); e != nil {
		return nil, Errors{e}
	}
	progOpts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	tracked := false
	est, err := env.EstimateCost(ast, noEstimates{})
	switch {
	case err == nil && est.Min > cfg.costLimit:
		return nil, Errors{{Line: 1, Column: 1,
			Msg: fmt.Sprintf("expression costs at least %d, over the limit of %d", est.Min, cfg.costLimit)}}
	case err != nil || est.Max > cfg.costLimit:
		// Runtime cost tracking allocates on every call, so only programs
		// that might exceed the limit pay for it.
		// sizeCost charges what pipe's + and the strings extension build.
		// cel-go's tracker is quadratic in the iterations of one
		// comprehension, so the time limit bounds what the cost limit
		// cannot bound soon enough.
		progOpts = append(progOpts, cel.CostLimit(cfg.costLimit), cel.CostTracking(sizeCost{}),
			cel.InterruptCheckFrequency(interruptEvery))
		tracked = true
	}
	prg, err := env.Program(ast, progOpts...)
	if err != nil {
		return nil, Errors{{Line: 1, Column: 1, Msg: err.Error()}}
	}
	p := &Program{src: src, ast: ast, prg: prg, costLimit: cfg.costLimit, celEnv: env}
	if tracked {
		p.timeLimit = cfg.timeLimit
	}
	if errs := p.bindEnv(cfg.lookup); len(errs) > 0 {
		return nil, errs
	}
	p.access = analyzeMsg(ast.NativeRep().Expr())
	if cfg.fullDecode && p.access.use == msgFields {
		p.access = msgAccess{use: msgWhole}
	}
	p.init()
	return p, nil
}

func newError(loc common.Location, msg string, cause error) *Error {
	e := &Error{Msg: msg, Err: cause}
	if loc != nil && loc.Line() > 0 {
		e.Line, e.Column = loc.Line(), loc.Column()+1
	}
	return e
}

// noEstimates leaves every size and call cost to cel-go's defaults.
type noEstimates struct{}

func (noEstimates) EstimateSize(checker.AstNode) *checker.SizeEstimate { return nil }

func (noEstimates) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil
}
