package expr

import (
	"fmt"
	"strings"

	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
)

// varEnv is the variable that holds the environment values an expression
// reads: env.NAME.
const varEnv = "env"

// WithEnv sets how env.NAME is resolved: lookup is called once per name at
// Compile, never at evaluation, and os.LookupEnv is the usual choice.
// Without WithEnv no name is set.
//
// An expression may read the environment only as env.NAME, env["NAME"],
// env.?NAME or has(env.NAME), so a message can never choose which variable
// is read; a plain env.NAME of an unset variable is a compile error (write
// env.?NAME.orValue("default") for a default). Environment values are
// values, never expression text, so they cannot change what an expression
// does; and no evaluation error quotes one.
func WithEnv(lookup func(string) (string, bool)) Option {
	return func(c *config) { c.lookup = lookup }
}

// envRead is one read of env in an expression.
type envRead struct {
	name     string
	id       int64
	optional bool // has(env.NAME) or env.?NAME: an unset NAME is no error
}

// envUse is what analyzeEnv learned: the reads, and the ids of every other
// appearance of env.
type envUse struct {
	reads []envRead
	bad   []int64
}

func analyzeEnv(e ast.Expr) envUse {
	var u envUse
	u.walk(e, false)
	return u
}

func (u *envUse) walk(e ast.Expr, shadowed bool) {
	if e == nil {
		return
	}
	isEnv := func(x ast.Expr) bool {
		return !shadowed && x.Kind() == ast.IdentKind && x.AsIdent() == varEnv
	}
	switch e.Kind() {
	case ast.IdentKind:
		if isEnv(e) {
			u.bad = append(u.bad, e.ID())
		}
	case ast.SelectKind:
		sel := e.AsSelect()
		if isEnv(sel.Operand()) {
			u.reads = append(u.reads, envRead{sel.FieldName(), e.ID(), sel.IsTestOnly()})
			return
		}
		u.walk(sel.Operand(), shadowed)
	case ast.CallKind:
		call := e.AsCall()
		args := call.Args()
		switch fn := call.FunctionName(); fn {
		case operators.Index, operators.OptIndex, operators.OptSelect:
			if len(args) == 2 && isEnv(args[0]) {
				if name, ok := stringLiteral(args[1]); ok {
					u.reads = append(u.reads, envRead{name, e.ID(), fn != operators.Index})
					return
				}
			}
		}
		if call.IsMemberFunction() {
			u.walk(call.Target(), shadowed)
		}
		for _, arg := range args {
			u.walk(arg, shadowed)
		}
	case ast.ComprehensionKind:
		c := e.AsComprehension()
		u.walk(c.IterRange(), shadowed)
		u.walk(c.AccuInit(), shadowed)
		inner := shadowed || c.IterVar() == varEnv || c.IterVar2() == varEnv || c.AccuVar() == varEnv
		u.walk(c.LoopCondition(), inner)
		u.walk(c.LoopStep(), inner)
		u.walk(c.Result(), inner)
	case ast.ListKind:
		for _, el := range e.AsList().Elements() {
			u.walk(el, shadowed)
		}
	case ast.MapKind:
		for _, entry := range e.AsMap().Entries() {
			me := entry.AsMapEntry()
			u.walk(me.Key(), shadowed)
			u.walk(me.Value(), shadowed)
		}
	case ast.StructKind:
		for _, f := range e.AsStruct().Fields() {
			u.walk(f.AsStructField().Value(), shadowed)
		}
	}
}

// bindEnv resolves the reads of env in p's expression with lookup, storing
// the values in p.env, and returns the problems.
func (p *Program) bindEnv(lookup func(string) (string, bool)) Errors {
	u := analyzeEnv(p.ast.NativeRep().Expr())
	var errs Errors
	info := p.ast.NativeRep().SourceInfo()
	for _, id := range u.bad {
		errs = append(errs, newError(info.GetStartLocation(id),
			"env may only be read as env.NAME (or env.?NAME, has(env.NAME)), so that no message can choose the variable", nil))
	}
	for _, r := range u.reads {
		v, ok := "", false
		if lookup != nil {
			v, ok = lookup(r.name)
		}
		switch {
		case ok:
			if p.env == nil {
				p.env = map[string]string{}
			}
			p.env[r.name] = v
		case !r.optional:
			errs = append(errs, newError(info.GetStartLocation(r.id), fmt.Sprintf(
				"environment variable %s is not set (set it, or give a default: env.?%s.orValue(\"value\"))", r.name, r.name), nil))
		}
	}
	return errs
}

// minScrubbed is the shortest environment value scrub replaces: shorter
// ones would mangle ordinary text.
const minScrubbed = 3

// scrub replaces every environment value the program read in msg.
func (p *Program) scrub(msg string) string {
	for _, v := range p.env {
		if len(v) >= minScrubbed {
			msg = strings.ReplaceAll(msg, v, "(value from environment)")
		}
	}
	return msg
}
