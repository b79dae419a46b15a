package dsl

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/expr"
)

// decoder fills config structs from YAML nodes following their component
// spec, collecting every error with its position.
type decoder struct {
	c    *Config
	errs *Errors
}

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	d.errs.Add(NodePos(d.c.File, n), format, args...)
}

func (d *decoder) show(n *yaml.Node) string { return showValue(d.c.fromEnv, n) }

// Decode fills the config struct cfg points to from n. With shorthand set,
// a scalar n fills that field alone. It is exported for kinds that decode
// nested components themselves.
func (d *decoder) decode(cfg any, fields []component.Field, shorthand string, n *yaml.Node, what string) {
	v := reflect.ValueOf(cfg).Elem()
	if n == nil || n.Tag == "!!null" {
		d.required(v, fields, n, what)
		return
	}
	if n.Kind != yaml.MappingNode && shorthand != "" {
		i := slices.IndexFunc(fields, func(f component.Field) bool { return f.Name == shorthand })
		d.value(v.FieldByIndex(fields[i].Index), fields[i], n, what+"."+shorthand)
		return
	}
	d.object(v, fields, n, what)
}

func (d *decoder) required(v reflect.Value, fields []component.Field, n *yaml.Node, what string) {
	for _, f := range fields {
		if f.Required {
			d.errorf(n, "%s: missing required key %q (%s)", what, f.Name, f.Description)
		}
	}
}

func (d *decoder) object(v reflect.Value, fields []component.Field, n *yaml.Node, what string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s: expected a mapping, got %s", what, kindName(n))
		return
	}
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.Name
	}
	set := map[string]bool{}
	unknown := false
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		j := slices.Index(names, k.Value)
		switch {
		case set[k.Value]:
			d.errorf(k, "%s: duplicate key %q", what, k.Value)
		case j < 0:
			unknown = true
			if s := Suggest(k.Value, names); s != "" {
				d.errorf(k, "%s: unknown key %q; did you mean %q?", what, k.Value, s)
			} else if len(names) == 0 {
				d.errorf(k, "%s: unknown key %q (it takes no keys)", what, k.Value)
			} else {
				d.errorf(k, "%s: unknown key %q (known: %s)", what, k.Value, strings.Join(names, ", "))
			}
		default:
			set[k.Value] = true
			d.value(v.FieldByIndex(fields[j].Index), fields[j], val, what+"."+k.Value)
		}
	}
	// After an unknown key, a missing required key is most likely that
	// key misspelt: report the real problem only.
	for _, f := range fields {
		if f.Required && !set[f.Name] && !unknown {
			d.errorf(n, "%s: missing required key %q (%s)", what, f.Name, f.Description)
		}
	}
}

func (d *decoder) value(dst reflect.Value, f component.Field, n *yaml.Node, what string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if dst.Kind() == reflect.Pointer && f.Type != component.TypeExpr {
		if n.Tag == "!!null" {
			return
		}
		if dst.IsNil() {
			dst.Set(reflect.New(dst.Type().Elem()))
		}
		dst = dst.Elem()
	}
	scalar := n.Kind == yaml.ScalarNode && n.Tag != "!!null"
	switch f.Type {
	case component.TypeString:
		if !scalar {
			d.errorf(n, "%s: expected a string, got %s", what, kindName(n))
			return
		}
		if len(f.Enum) > 0 && !slices.Contains(f.Enum, n.Value) {
			if s := Suggest(n.Value, f.Enum); s != "" {
				d.errorf(n, "%s: %s is not one of %s; did you mean %q?", what, d.show(n), strings.Join(f.Enum, ", "), s)
			} else {
				d.errorf(n, "%s: %s is not one of %s", what, d.show(n), strings.Join(f.Enum, ", "))
			}
			return
		}
		dst.SetString(n.Value)
	case component.TypeBool:
		if n.Tag != "!!bool" {
			d.errorf(n, "%s: expected true or false, got %s", what, d.show(n))
			return
		}
		dst.SetBool(n.Value == "true")
	case component.TypeInt:
		i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
		if n.Tag != "!!int" || err != nil {
			if n.Tag == "!!int" {
				d.errorf(n, "%s: %s does not fit in 64 bits", what, d.show(n))
			} else {
				d.errorf(n, "%s: expected an integer, got %s", what, d.show(n))
			}
			return
		}
		if !d.inRange(n, f, float64(i), what) {
			return
		}
		if dst.OverflowInt(i) {
			d.errorf(n, "%s: %d is too large", what, i)
			return
		}
		dst.SetInt(i)
	case component.TypeFloat:
		x, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
		if n.Tag != "!!int" && n.Tag != "!!float" || err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			d.errorf(n, "%s: expected a number, got %s", what, d.show(n))
			return
		}
		if !d.inRange(n, f, x, what) {
			return
		}
		dst.SetFloat(x)
	case component.TypeDuration:
		if !scalar {
			d.errorf(n, "%s: expected a duration such as 250ms, got %s", what, kindName(n))
			return
		}
		dur, err := ParseDuration(n.Value)
		if n.Tag == "!!int" && n.Value == "0" {
			dur, err = 0, nil
		}
		if err != nil {
			d.errorf(n, "%s: %s", what, d.hide(n, err))
			return
		}
		if !d.inRange(n, f, dur.Seconds(), what) {
			return
		}
		dst.SetInt(int64(dur))
	case component.TypeSize:
		if !scalar {
			d.errorf(n, "%s: expected a size such as 64KiB, got %s", what, kindName(n))
			return
		}
		sz, err := ParseSize(n.Value)
		if err != nil {
			d.errorf(n, "%s: %s", what, d.hide(n, err))
			return
		}
		if !d.inRange(n, f, float64(sz), what) {
			return
		}
		dst.SetInt(sz)
	case component.TypeExpr:
		if !scalar {
			d.errorf(n, "%s: expected a CEL expression, got %s", what, kindName(n))
			return
		}
		if d.refuseEnvRef(n, what, true) {
			return
		}
		prog, err := expr.Compile(n.Value, expr.WithVariables(f.Vars...), expr.WithResult(f.Result...), expr.WithEnv(d.c.lookup))
		if err != nil {
			d.exprErrors(n, err, what)
			return
		}
		dst.Set(reflect.ValueOf(prog))
	case component.TypeList:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, "%s: expected a list, got %s", what, kindName(n))
			return
		}
		elem := component.Field{Name: f.Name, Type: f.Elem, Fields: f.Fields, Enum: f.Enum, Min: f.Min, Max: f.Max, Vars: f.Vars, Result: f.Result}
		s := reflect.MakeSlice(dst.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.value(s.Index(i), elem, item, fmt.Sprintf("%s[%d]", what, i))
		}
		dst.Set(s)
	case component.TypeMap:
		if n.Kind != yaml.MappingNode {
			d.errorf(n, "%s: expected a mapping, got %s", what, kindName(n))
			return
		}
		m := reflect.MakeMap(dst.Type())
		elem := component.Field{Name: f.Name, Type: f.Elem, Fields: f.Fields, Vars: f.Vars, Result: f.Result}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			ev := reflect.New(dst.Type().Elem()).Elem()
			d.value(ev, elem, val, what+"."+k.Value)
			m.SetMapIndex(reflect.ValueOf(k.Value), ev)
		}
		dst.Set(m)
	case component.TypeObject:
		if n.Tag == "!!null" {
			return
		}
		if scalar && f.Shorthand != "" {
			i := slices.IndexFunc(f.Fields, func(sf component.Field) bool { return sf.Name == f.Shorthand })
			d.value(dst.FieldByIndex(f.Fields[i].Index), f.Fields[i], n, what+"."+f.Shorthand)
			return
		}
		d.object(dst, f.Fields, n, what)
	default:
		d.errorf(n, "%s: unsupported field type %s", what, f.Type)
	}
}

// refuseEnvRef reports a ${NAME} reference in the expression n, whose
// substituted value could change the expression's structure (a value
// holding `x" || "a" == "a` turns a comparison into true). withEnv says
// whether the expression can read env.NAME instead.
func (d *decoder) refuseEnvRef(n *yaml.Node, what string, withEnv bool) bool {
	r, ok := d.c.envRefs[n]
	if !ok {
		return false
	}
	hint := "write the value into the file"
	if withEnv {
		hint = fmt.Sprintf("read it as a value with env.%s", r.name)
	}
	d.errs.Add(r.pos, "%s: ${%s} is not allowed in a CEL expression, where an environment value could change the expression itself; %s", what, r.name, hint)
	return true
}

// hide replaces err's text with a generic one when n's value came from the
// environment, whose value err may quote.
func (d *decoder) hide(n *yaml.Node, err error) string {
	if d.c.fromEnv[n] {
		return "invalid value (from environment)"
	}
	return err.Error()
}

func (d *decoder) inRange(n *yaml.Node, f component.Field, x float64, what string) bool {
	switch {
	case f.Min != nil && x < *f.Min:
		d.errorf(n, "%s: %s is below the minimum %v", what, d.show(n), *f.Min)
	case f.Max != nil && x > *f.Max:
		d.errorf(n, "%s: %s is above the maximum %v", what, d.show(n), *f.Max)
	default:
		return true
	}
	return false
}

// exprErrors maps CEL errors, positioned within the expression, into the file.
func (d *decoder) exprErrors(n *yaml.Node, err error, what string) {
	var list expr.Errors
	if errors.As(err, &list) && len(list) > 0 {
		for _, e := range list {
			d.errs.Add(ExprPos(d.c.File, d.c.Src, n, e.Line, e.Column), "%s: %s", what, e.Msg)
		}
		return
	}
	var one *expr.Error
	if errors.As(err, &one) {
		d.errs.Add(ExprPos(d.c.File, d.c.Src, n, one.Line, one.Column), "%s: %s", what, one.Msg)
		return
	}
	d.errorf(n, "%s: %v", what, err)
}
