package stages

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/expr"
	"github.com/pipe-dsl/pipe/pipeline"
)

type mapConfig struct {
	Expression *expr.Program            `pipe:"expression" desc:"CEL expression whose value becomes the whole new body (encoded as JSON)." example:"{\"id\": msg.id, \"cents\": int(msg.amount * 100.0)}"`
	Set        map[string]*expr.Program `pipe:"set" desc:"Fields to set on the JSON object body, each to the value of a CEL expression. A dotted key (a.b) sets a nested field, creating objects on the way." example:"{cents: int(msg.amount * 100.0)}"`
	Delete     []string                 `pipe:"delete" desc:"Fields to delete from the body after set; dotted keys reach nested fields." example:"[amount, debug.trace]"`
}

func init() {
	component.Register(component.Stage("map",
		"Replaces each message body with the value of a CEL expression, or sets and deletes fields of it.",
		mapConfig{}, newMap, component.WithShorthand("expression"),
		component.WithBatching(component.BatchesReject)))
}

// mapper rewrites bodies.
//
//	in  -- a ---- b ---- c --
//	     [ f(x) ]
//	out -- f(a) - f(b) - f(c)
type mapper struct {
	whole  *expr.Program
	set    []assignment
	delete [][]string
	// top holds the deleted keys when every set and delete path is one
	// key long: such a map patches the body without decoding it whole.
	top     bool
	delKeys []string
}

type assignment struct {
	path []string
	prog *expr.Program
}

var _ pipeline.Processor = (*mapper)(nil)

func newMap(c *mapConfig, _ component.Env) (any, error) {
	fields := len(c.Set) > 0 || len(c.Delete) > 0
	switch {
	case c.Expression != nil && fields:
		return nil, errors.New("use either expression or set/delete, not both")
	case c.Expression == nil && !fields:
		return nil, errors.New("needs an expression, or set/delete fields")
	}
	m := &mapper{whole: c.Expression}
	for _, k := range slices.Sorted(maps.Keys(c.Set)) {
		m.set = append(m.set, assignment{path: strings.Split(k, "."), prog: c.Set[k]})
	}
	for _, k := range c.Delete {
		m.delete = append(m.delete, strings.Split(k, "."))
	}
	m.top = true
	for _, a := range m.set {
		m.top = m.top && len(a.path) == 1
	}
	for _, p := range m.delete {
		m.top = m.top && len(p) == 1
		m.delKeys = append(m.delKeys, p[0])
	}
	return m, nil
}

func (mp *mapper) Process(_ context.Context, m *pipeline.Message) (*pipeline.Message, error) {
	if m.Batch() != nil {
		return nil, errBatch("map")
	}
	in := input(m)
	if mp.whole != nil {
		// The new body is not decoded here: the next stage decodes what
		// it reads, if anything (a sink reads nothing).
		body, err := mp.whole.EvalBody(&in)
		if err != nil {
			return nil, evalError(err)
		}
		m.SetBody(body)
		return m, nil
	}
	if mp.top && in.Decoded == nil {
		if in.Object == nil {
			in.Object = expr.ScanObject(m.Body) // the expressions read their fields from it
		}
		if in.Object != nil && mp.patch(m, &in) {
			return m, nil
		}
		in = input(m) // decode and evaluate again, for the precise error
	}
	doc := in.Decoded
	shared := doc != nil // cached on m, maybe on its copies too
	if doc == nil {
		var err error
		if doc, err = expr.DecodeJSON(m.Body); err != nil {
			return nil, pipeline.WithReason(pipeline.ReasonInvalidPayload, err)
		}
		in.Decoded = doc
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return nil, pipeline.WithReason(pipeline.ReasonInvalidPayload,
			fmt.Errorf("map set/delete needs a JSON object body, got %s", jsonKind(doc)))
	}
	// Evaluate every expression against the original body first.
	var small [4]any // no allocation for up to four fields
	vals := small[:0]
	if len(mp.set) > len(small) {
		vals = make([]any, 0, len(mp.set))
	}
	vals = vals[:len(mp.set)]
	for i, a := range mp.set {
		v, err := a.prog.EvalNative(&in)
		if err != nil {
			return nil, evalError(fmt.Errorf("set %s: %w", strings.Join(a.path, "."), err))
		}
		vals[i] = v
	}
	out := obj
	if shared {
		out = maps.Clone(obj)
	}
	for i, a := range mp.set {
		if err := setPath(out, a.path, vals[i]); err != nil {
			return nil, pipeline.WithReason(pipeline.ReasonInvalidPayload, err)
		}
	}
	for _, p := range mp.delete {
		deletePath(out, p)
	}
	body, err := expr.EncodeJSON(out)
	if err != nil {
		return nil, evalError(err)
	}
	m.SetBody(body)
	m.SetDecoded(out)
	return m, nil
}

// patch sets and deletes top-level fields of m's body, in.Object, without
// decoding it whole or scanning it again: each expression decodes only the
// fields it reads from the scan (an earlier stage's, if it made one), and
// [expr.Object.Patch] re-encodes the body from it, to the bytes the
// decode-and-encode path gives. It reports false, changing nothing, on any
// error (a bad body or expression); the caller then takes that path to
// report it as before.
func (mp *mapper) patch(m *pipeline.Message, in *expr.Input) bool {
	var small [4]expr.Field // no allocation for up to four fields
	fields := small[:0]
	for _, a := range mp.set {
		v, err := a.prog.EvalNative(in)
		if err != nil {
			return false
		}
		fields = append(fields, expr.Field{Key: a.path[0], Value: v})
	}
	body, ok := in.Object.Patch(fields, mp.delKeys)
	if !ok {
		return false
	}
	m.SetBody(body) // not decoded: the next stage decodes what it reads
	return true
}

// setPath sets obj[p0][p1]... = v, cloning nested objects it changes so the
// decoded body cached on other messages stays untouched.
func setPath(obj map[string]any, path []string, v any) error {
	for i, k := range path[:len(path)-1] {
		switch next := obj[k].(type) {
		case map[string]any:
			c := maps.Clone(next)
			obj[k] = c
			obj = c
		case nil:
			c := map[string]any{}
			obj[k] = c
			obj = c
		default:
			return fmt.Errorf("set %s: %s is %s, not an object", strings.Join(path, "."), strings.Join(path[:i+1], "."), jsonKind(next))
		}
	}
	obj[path[len(path)-1]] = v
	return nil
}

func deletePath(obj map[string]any, path []string) {
	for _, k := range path[:len(path)-1] {
		next, ok := obj[k].(map[string]any)
		if !ok {
			return
		}
		c := maps.Clone(next)
		obj[k] = c
		obj = c
	}
	delete(obj, path[len(path)-1])
}

func jsonKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return "a number"
}
