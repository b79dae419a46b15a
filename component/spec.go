package component

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/pipe-dsl/pipe/expr"
)

// Size is a byte count written as "64KiB" or "1MB" in pipeline files.
type Size int64

// Field types as shown by `pipe kinds` and the JSON Schema.
const (
	TypeString   = "string"
	TypeBool     = "bool"
	TypeInt      = "int"
	TypeFloat    = "float"
	TypeDuration = "duration"
	TypeSize     = "size"
	TypeExpr     = "expr"
	TypeList     = "list"
	TypeMap      = "map"
	TypeObject   = "object"
)

// Field is one config key of a kind, derived from a struct field:
//
//	Rate float64 `pipe:"rate,required" desc:"Messages per second." example:"100" min:"0"`
//
// The tag `pipe:"name[,required][,secret]"` names the key; desc is
// mandatory; enum:"a,b" restricts strings; min and max bound numbers;
// vars:"response,status" declares variables an expression field may read
// besides msg, meta, raw and seq; result:"bool" declares the CEL type(s)
// its value must have, checked when the file is compiled (a dyn value is
// checked per message by the kind). shorthand:"key" lets an object field be
// written as a scalar that fills that one key (`emit: on_close` for
// `emit: {mode: on_close}`). The default is the field's value in the kind's
// default config.
type Field struct {
	Name        string
	Type        string
	Description string
	Default     string
	Example     string
	Required    bool
	// Secret fields are never printed: not in errors, graphs or logs.
	Secret   bool
	Enum     []string
	Min, Max *float64
	// Elem is the element type of a list or map.
	Elem string
	// Fields are the keys of an object, or of a list's object elements.
	Fields []Field
	// Vars are the extra variables of an expr field (expr.WithVariables).
	Vars []string
	// Result lists the CEL types an expr field's value may have
	// (expr.WithResult); empty means any.
	Result []string
	// Shorthand names the key of an object field that a scalar fills:
	// `on_missing: drop` for `on_missing: {action: drop}`.
	Shorthand string
	// Index is the reflect field index in the config struct.
	Index []int
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	sizeType     = reflect.TypeFor[Size]()
	exprType     = reflect.TypeFor[*expr.Program]()
)

// TypeOf returns the spec type name of a Go config field type.
func TypeOf(t reflect.Type) string {
	switch t {
	case durationType:
		return TypeDuration
	case sizeType:
		return TypeSize
	case exprType:
		return TypeExpr
	}
	switch t.Kind() {
	case reflect.String:
		return TypeString
	case reflect.Bool:
		return TypeBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return TypeInt
	case reflect.Float32, reflect.Float64:
		return TypeFloat
	case reflect.Slice:
		return TypeList
	case reflect.Map:
		return TypeMap
	case reflect.Struct:
		return TypeObject
	case reflect.Pointer:
		return TypeOf(t.Elem())
	}
	panic(fmt.Sprintf("component: unsupported config field type %s", t))
}

// fieldsOf derives the spec of struct value v; it panics on a field without
// a pipe tag or description, so an undocumented field cannot be registered.
func fieldsOf(v reflect.Value) []Field {
	t := v.Type()
	var out []Field
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		tag, ok := sf.Tag.Lookup("pipe")
		if !ok {
			panic(fmt.Sprintf("component: %s.%s has no pipe tag", t, sf.Name))
		}
		if tag == "-" {
			continue
		}
		name, flags, _ := strings.Cut(tag, ",")
		f := Field{
			Name:        name,
			Type:        TypeOf(sf.Type),
			Description: sf.Tag.Get("desc"),
			Example:     sf.Tag.Get("example"),
			Required:    strings.Contains(","+flags+",", ",required,"),
			Secret:      strings.Contains(","+flags+",", ",secret,"),
			Index:       sf.Index,
		}
		if f.Description == "" {
			panic(fmt.Sprintf("component: %s.%s has no desc tag", t, sf.Name))
		}
		if e := sf.Tag.Get("enum"); e != "" {
			f.Enum = strings.Split(e, ",")
		}
		if v := sf.Tag.Get("vars"); v != "" {
			f.Vars = strings.Split(v, ",")
		}
		if r := sf.Tag.Get("result"); r != "" {
			f.Result = strings.Split(r, ",")
		}
		f.Shorthand = sf.Tag.Get("shorthand")
		f.Min, f.Max = parseBound(sf.Tag.Get("min")), parseBound(sf.Tag.Get("max"))
		fv := v.Field(i)
		f.Default = defaultString(fv)
		et := sf.Type
		if et.Kind() == reflect.Pointer && et != exprType {
			et = et.Elem()
		}
		switch et.Kind() {
		case reflect.Struct:
			if et != exprType.Elem() {
				nested := reflect.New(et).Elem()
				if fv.Kind() == reflect.Struct {
					nested = fv // its defaults are the kind's
				}
				f.Fields = fieldsOf(nested)
			}
		case reflect.Slice, reflect.Map:
			f.Elem = TypeOf(et.Elem())
			if f.Elem == TypeObject {
				f.Fields = fieldsOf(reflect.New(et.Elem()).Elem())
			}
		}
		out = append(out, f)
	}
	return out
}

func parseBound(s string) *float64 {
	if s == "" {
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		panic(fmt.Sprintf("component: bad bound %q", s))
	}
	return &f
}

func defaultString(v reflect.Value) string {
	if v.IsZero() {
		return ""
	}
	switch v.Type() {
	case durationType:
		return time.Duration(v.Int()).String()
	case sizeType:
		return strconv.FormatInt(v.Int(), 10)
	}
	switch v.Kind() {
	case reflect.Struct, reflect.Pointer, reflect.Slice, reflect.Map:
		return ""
	}
	return fmt.Sprint(v.Interface())
}
