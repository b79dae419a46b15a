package dsl_test

import (
	"strings"
	"testing"

	"github.com/pipe-dsl/pipe/dsl"
)

// compileErr parses and compiles src (as p.yaml) with the environment env
// and returns the error text, "" if it compiled.
func compileEnvErr(t *testing.T, src string, env map[string]string) string {
	t.Helper()
	opts := dsl.Options{Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	cfg, err := dsl.Parse("p.yaml", []byte(src), &opts)
	if err == nil {
		_, err = dsl.Compile(cfg, &dsl.CompileOptions{Options: opts})
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

// linear is a pipeline with the given stages between stdin and stdout.
func linear(stages string) string {
	return "name: t\nsource: {stdin: {}}\nstages:\n" + stages + "sink: {stdout: {}}\n"
}

// Conditions are bool at validate time: an expression whose type, or
// every overload it may call, is not bool is refused at its position; a
// dyn one is left to the per-message check.
func TestConditionsMustBeBool(t *testing.T) {
	for _, tc := range []struct{ stages, want string }{
		{"  - filter: 1 + 1\n", "p.yaml:4:13: filter.condition: expression has type int, want bool"},
		{"  - filter: '\"always\"'\n", "p.yaml:4:14: filter.condition: expression has type string, want bool"},
		{"  - filter: msg.id + 1\n", "p.yaml:4:13: filter.condition: expression has type double or int, want bool"},
		{"  - route:\n      cases:\n        - when: '\"yes\"'\n          stages: []\n",
			`p.yaml:6:18: route.cases[0].when: expression has type string, want bool`},
		{"  - route:\n      cases:\n        - when: msg.id + 1\n          stages: []\n",
			`p.yaml:6:17: route.cases[0].when: expression has type double or int, want bool`},
	} {
		got := compileEnvErr(t, linear(tc.stages), nil)
		if !strings.Contains(got, tc.want) {
			t.Errorf("compiling\n%s\n= %q, want it to contain %q", tc.stages, got, tc.want)
		}
	}
	for _, ok := range []string{"  - filter: msg.ok\n", "  - filter: msg.id > 1 && meta.k == 'x'\n"} {
		if got := compileEnvErr(t, linear(ok), nil); got != "" {
			t.Errorf("compiling %q = %q, want no error", ok, got)
		}
	}
}

// An environment value can never change an expression's structure: ${...}
// inside an expression is refused with a hint, and env.NAME reads the
// value as a value (issue 20 item 10).
func TestEnvReferencesInExpressionsAreRefused(t *testing.T) {
	env := map[string]string{"LEVEL": `x" || "a" == "a`, "MINID": "hunter2pw"}
	for _, tc := range []struct{ stages, want string }{
		{"  - filter: 'msg.level == \"${LEVEL}\"'\n",
			`p.yaml:4:28: filter.condition: ${LEVEL} is not allowed in a CEL expression, where an environment value could change the expression itself; read it as a value with env.LEVEL`},
		{"  - filter: msg.id > ${MINID}\n", `p.yaml:4:22: filter.condition: ${MINID} is not allowed`},
		{"  - filter: msg.id > ${UNSET:-3}\n", `p.yaml:4:22: filter.condition: ${UNSET} is not allowed`},
		{"  - map: {set: {x: 'msg.a + \"${LEVEL}\"'}}\n", `p.yaml:4:30: map.set.x: ${LEVEL} is not allowed`},
		{"  - http: {url: 'http://127.0.0.1:1/x'}\n    retry: {retry_on: 'error.status == ${MINID}'}\n",
			`http.retry.retry_on: ${MINID} is not allowed in a CEL expression, where an environment value could change the expression itself; write the value into the file`},
		{"  - filter: msg.level == env.NOPE\n", `p.yaml:4:29: filter.condition: environment variable NOPE is not set`},
	} {
		got := compileEnvErr(t, linear(tc.stages), env)
		if !strings.Contains(got, tc.want) {
			t.Errorf("compiling\n%s\n= %q, want it to contain %q", tc.stages, got, tc.want)
		}
		if strings.Contains(got, "hunter2pw") || strings.Contains(got, `"a" == "a`) {
			t.Errorf("compiling\n%s\nquotes an environment value: %q", tc.stages, got)
		}
	}
	if got := compileEnvErr(t, linear("  - filter: 'msg.level == env.LEVEL && \"$${literal}\" != \"\"'\n"), env); got != "" {
		t.Errorf("env.LEVEL and an escaped $${ = %q, want no error", got)
	}
}

// The injection of issue 20 item 10, run: with env.LEVEL the hostile value
// is compared as a string, so nothing passes.
func TestEnvValueCannotPassEveryMessage(t *testing.T) {
	lookup := func(k string) (string, bool) { return `x" || "a" == "a`, k == "LEVEL" }
	delivered, _ := runHostile(t, "../testdata/hostile/env_expr.yaml", lookup, `{"level": "info"}`, `{"level": "error"}`)
	if len(delivered) != 0 {
		t.Errorf("delivered %q, want nothing", delivered)
	}
}

// An evaluation error of an expression that read a secret does not quote
// it, in the dead letter either (issue 20 item 11).
func TestEnvValueIsNotInDeadLetters(t *testing.T) {
	lookup := func(k string) (string, bool) { return "hunter2pw", k == "MINID" }
	_, dead := runHostile(t, "../testdata/hostile/env_secret.yaml", lookup, `{"id": 1}`)
	if len(dead) != 1 || dead[0].Reason != "expression_error" {
		t.Fatalf("dead letters %+v, want one expression_error", dead)
	}
	if strings.Contains(dead[0].Error, "hunter2pw") {
		t.Errorf("dead letter error quotes the value: %q", dead[0].Error)
	}
}

// CEL errors reach the file position with their hint (issue 20 item 19).
func TestUndeclaredVariableHintHasItsPosition(t *testing.T) {
	got := compileEnvErr(t, linear("  - filter: message.id > 1\n"), nil)
	if want := "p.yaml:4:13: filter.condition: undeclared reference to 'message'; did you mean 'msg'?"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
