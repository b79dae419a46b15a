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
