package stages

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/pipe-dsl/pipe/component"

	"github.com/pipe-dsl/pipe/expr"
	"github.com/pipe-dsl/pipe/windowing"
)

// parseAggregate reads one aggregate, `function(argument)` or
// `quantile(argument, q)`, and compiles its CEL argument. An argument whose
// type the checker knows and the function cannot take is an error here;
// one known only at run time (anything read from msg) is checked per
// message, and a message of the wrong type goes to the dead-letter path.
//
// Errors are *component.FieldError at aggregate.NAME, positioned within
// src where the problem is known: at the argument for a type error, at
// the CEL error inside it.
func parseAggregate(name, src string, maxCollect int) (windowing.Agg, *expr.Program, error) {
	a := windowing.Agg{Name: name, MaxCollect: maxCollect}
	col := 1 // the position of the problem in src, in characters
	fail := func(format string, args ...any) (windowing.Agg, *expr.Program, error) {
		return a, nil, &component.FieldError{Path: []string{"aggregate", name}, Line: 1, Col: col,
			Err: fmt.Errorf("%s: %s", src, fmt.Sprintf(format, args...))}
	}
	fn, rest, ok := strings.Cut(strings.TrimSpace(src), "(")
	fn = strings.TrimSpace(fn)
	if !ok || !strings.HasSuffix(rest, ")") {
		return fail("want function(argument), one of %s", funcNames())
	}
	a.Func = windowing.Func(fn)
	if !isFunc(a.Func) {
		return fail("unknown function %q; want one of %s", fn, funcNames())
	}
	args, err := splitArgs(strings.TrimSuffix(rest, ")"))
	if err != nil {
		return fail("%v", err)
	}
	want := 1
	switch a.Func {
	case windowing.Count:
		want = 0
	case windowing.Quantile:
		want = 2
	}
	if len(args) != want {
		return fail("%s takes %d argument(s), got %d", fn, want, len(args))
	}
	if want == 0 {
		return a, nil, nil
	}
	if a.Func == windowing.Quantile {
		q, err := strconv.ParseFloat(strings.TrimSpace(args[1]), 64)
		if err != nil || q < 0 || q > 1 || math.IsNaN(q) {
			return fail("the quantile's rank must be a number in [0, 1], got %q", strings.TrimSpace(args[1]))
		}
		a.Q = q
	}
	// The argument's first character, counted in characters of src.
	open := strings.Index(src, "(") + 1
	col = utf8.RuneCountInString(src[:open]) + 1 + utf8.RuneCountInString(args[0]) - utf8.RuneCountInString(strings.TrimLeft(args[0], " \t\n"))
	prog, err := expr.Compile(strings.TrimSpace(args[0]))
	if err != nil {
		var list expr.Errors
		if errors.As(err, &list) && len(list) > 0 && list[0].Line == 1 {
			col += list[0].Column - 1
		}
		return fail("%v", err)
	}
	t := prog.ResultType()
	numeric := t == "int" || t == "double" || t == "dyn"
	switch a.Func {
	case windowing.Sum, windowing.Avg, windowing.Quantile:
		if !numeric {
			return fail("%s takes a number, but the argument is a %s", fn, t)
		}
	case windowing.Min, windowing.Max:
		if !numeric && t != "string" {
			return fail("%s takes a number or a string, but the argument is a %s", fn, t)
		}
	}
	return a, prog, nil
}

func isFunc(f windowing.Func) bool {
	for _, x := range windowing.Funcs {
		if x == f {
			return true
		}
	}
	return false
}

func funcNames() string {
	names := make([]string, len(windowing.Funcs))
	for i, f := range windowing.Funcs {
		names[i] = string(f)
	}
	return strings.Join(names, ", ")
}

// splitArgs splits s at the commas outside brackets and string literals.
func splitArgs(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var args []string
	depth, start := 0, 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '(' || c == '[' || c == '{':
			depth++
		case c == ')' || c == ']' || c == '}':
			depth--
			if depth < 0 {
				return nil, fmt.Errorf("unbalanced %q at offset %d", c, i)
			}
		case c == ',' && depth == 0:
			args = append(args, s[start:i])
			start = i + 1
		}
	}
	if depth != 0 || quote != 0 {
		return nil, fmt.Errorf("unbalanced brackets or quotes")
	}
	return append(args, s[start:]), nil
}
