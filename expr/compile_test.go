package expr

import (
	"errors"
	"strings"
	"testing"
)

func TestCompileErrors(t *testing.T) {
	type pos struct {
		line, col int
		msg       string
	}
	run := func(src string, want ...pos) {
		t.Helper()
		_, err := Compile(src)
		var errs Errors
		if !errors.As(err, &errs) {
			t.Fatalf("Compile(%#q) error = %v, want Errors", src, err)
		}
		if len(errs) != len(want) {
			t.Fatalf("Compile(%#q) = %d errors (%v), want %d", src, len(errs), err, len(want))
		}
		for i, w := range want {
			if e := errs[i]; e.Line != w.line || e.Column != w.col || !strings.Contains(e.Msg, w.msg) {
				t.Errorf("Compile(%#q) error %d = %d:%d %q, want %d:%d containing %q", src, i, e.Line, e.Column, e.Msg, w.line, w.col, w.msg)
			}
		}
	}
	run(`1 +`, pos{1, 4, "Syntax error"})
	run(`msg.a == nope`, pos{1, 10, "undeclared reference to 'nope'"})
	run("msg.level == 'error' &&\n  size(msg.tags) > 1 &&\n  nope(msg)", pos{3, 7, "undeclared reference to 'nope'"})
	run(`a + b`, pos{1, 1, "'a'"}, pos{1, 5, "'b'"})
	run(`"é☃" + x`, pos{1, 8, "'x'"})
	run(`meta.k + 1`, pos{1, 8, "no matching overload"})
	run("{\n\"a\": }", pos{2, 6, "Syntax error"})
}

func TestCompileErrorsAs(t *testing.T) {
	_, err := Compile(`nope`)
	var e *Error
	if !errors.As(err, &e) || e.Line != 1 || e.Column != 1 {
		t.Errorf("errors.As(Compile(`nope`), *Error) = %v, want an *Error at 1:1", e)
	}
}

func TestWithBoolResult(t *testing.T) {
	run := func(src string, wantErr bool) {
		t.Helper()
		_, err := Compile(src, WithBoolResult())
		if (err != nil) != wantErr {
			t.Errorf("Compile(%#q, WithBoolResult()) error = %v, want error %v", src, err, wantErr)
		}
	}
	run(`msg.level == "error"`, false)
	run(`msg.ok`, false) // dyn: checked at evaluation
	run(`1 + 2`, true)
	run(`"yes"`, true)
	// dyn, but no candidate overload of + returns a bool.
	run(`msg.id + 1`, true)
	run(`msg.a + msg.b`, true)
	run(`msg.a == msg.b`, false)
	run(`msg.flags[0]`, false) // dyn index: checked at evaluation
	run(`[true].exists(x, x)`, false)
}

func TestWithResultErrorNamesTheTypes(t *testing.T) {
	_, err := Compile(`msg.id + 1`, WithBoolResult())
	if err == nil || err.Error() != "1:1: expression has type double or int, want bool" {
		t.Errorf("Compile(`msg.id + 1`, WithBoolResult()) = %v", err)
	}
	if _, err := CompileErrorPredicate(`error.status + 1`); err == nil || !strings.Contains(err.Error(), "want bool") {
		t.Errorf("CompileErrorPredicate(`error.status + 1`) = %v, want a type error", err)
	}
}

// nested is a comprehension over literal lists that costs over 10,000.
const nested = `[1,2,3,4,5,6,7,8,9,10].map(a, [1,2,3,4,5,6,7,8,9,10].map(b, [1,2,3,4,5,6,7,8,9,10].map(c, [1,2,3,4,5,6,7,8,9,10].map(d, a+b+c+d)))).size()`

func TestCostLimitKnownAtCompileTime(t *testing.T) {
	if _, err := Compile(nested); err != nil {
		t.Errorf("Compile(nested) error = %v, want nil under the default limit", err)
	}
	_, err := Compile(nested, WithCostLimit(1000))
	var e *Error
	if !errors.As(err, &e) || !strings.Contains(e.Msg, "over the limit of 1000") {
		t.Errorf("Compile(nested, WithCostLimit(1000)) error = %v, want cost over the limit", err)
	}
}

func TestCostLimitAtEvaluation(t *testing.T) {
	p, err := Compile(`msg.items.map(a, msg.items.map(b, msg.items.map(c, a + b + c))).size()`, WithCostLimit(10_000))
	if err != nil {
		t.Fatal(err)
	}
	run := func(n int, wantErr error) {
		t.Helper()
		items := "[" + strings.TrimSuffix(strings.Repeat("1,", n), ",") + "]"
		_, err := p.Eval(&Input{Raw: []byte(`{"items":` + items + `}`)})
		if !errors.Is(err, wantErr) {
			t.Errorf("Eval(%d items) error = %v, want %v", n, err, wantErr)
		}
	}
	run(3, nil)
	run(100, ErrCostLimit)
	run(10_000, ErrCostLimit)
}
