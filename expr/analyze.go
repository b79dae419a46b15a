package expr

import (
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
)

// msgUse says how an expression reads msg.
type msgUse int

const (
	msgUnused msgUse = iota // msg is never read
	msgFields               // msg is read only through top-level field names
	msgWhole                // msg is read as a value
)

// msgAccess is what analyzeMsg learned about an expression.
type msgAccess struct {
	use msgUse
	// fields are the top-level field names read when use is msgFields, in
	// order of first appearance, without duplicates.
	fields []string
}

// analyzeMsg walks a checked expression and reports how it reads msg. Only
// msg.f, has(msg.f), msg.?f, msg["f"] and msg[?"f"] with a literal string
// count as field reads; any other appearance of msg, and any comprehension
// that binds a variable named msg, makes the whole message needed.
func analyzeMsg(e ast.Expr) msgAccess {
	var a msgAccess
	a.walk(e)
	if a.use == msgWhole {
		a.fields = nil
	}
	return a
}

func (a *msgAccess) walk(e ast.Expr) {
	if a.use == msgWhole || e == nil {
		return
	}
	switch e.Kind() {
	case ast.IdentKind:
		if e.AsIdent() == varMsg {
			a.use = msgWhole
		}
	case ast.SelectKind:
		sel := e.AsSelect()
		if isMsg(sel.Operand()) {
			a.field(sel.FieldName())
			return
		}
		a.walk(sel.Operand())
	case ast.CallKind:
		call := e.AsCall()
		args := call.Args()
		switch call.FunctionName() {
		case operators.Index, operators.OptIndex, operators.OptSelect:
			if len(args) == 2 && isMsg(args[0]) {
				if name, ok := stringLiteral(args[1]); ok {
					a.field(name)
					return
				}
			}
		}
		if call.IsMemberFunction() {
			a.walk(call.Target())
		}
		for _, arg := range args {
			a.walk(arg)
		}
	case ast.ComprehensionKind:
		c := e.AsComprehension()
		if c.IterVar() == varMsg || c.IterVar2() == varMsg || c.AccuVar() == varMsg {
			a.use = msgWhole
			return
		}
		a.walk(c.IterRange())
		a.walk(c.AccuInit())
		a.walk(c.LoopCondition())
		a.walk(c.LoopStep())
		a.walk(c.Result())
	case ast.ListKind:
		for _, el := range e.AsList().Elements() {
			a.walk(el)
		}
	case ast.MapKind:
		for _, entry := range e.AsMap().Entries() {
			me := entry.AsMapEntry()
			a.walk(me.Key())
			a.walk(me.Value())
		}
	case ast.StructKind:
		for _, f := range e.AsStruct().Fields() {
			a.walk(f.AsStructField().Value())
		}
	}
}

func (a *msgAccess) field(name string) {
	a.use = msgFields
	for _, f := range a.fields {
		if f == name {
			return
		}
	}
	a.fields = append(a.fields, name)
}

func isMsg(e ast.Expr) bool {
	return e.Kind() == ast.IdentKind && e.AsIdent() == varMsg
}

func stringLiteral(e ast.Expr) (string, bool) {
	if e.Kind() != ast.LiteralKind {
		return "", false
	}
	s, ok := e.AsLiteral().(types.String)
	return string(s), ok
}
