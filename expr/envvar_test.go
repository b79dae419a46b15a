package expr

import (
	"strings"
	"testing"
)

func lookupOf(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

// Environment values are bound as values: a value holding CEL syntax is a
// string like any other and cannot change what the expression does.
func TestEnvValuesAreValues(t *testing.T) {
	lookup := lookupOf(map[string]string{"LEVEL": `x" || "a" == "a`, "MIN": "3"})
	run := func(src, body string, want bool) {
		t.Helper()
		p, err := Compile(src, WithEnv(lookup), WithBoolResult())
		if err != nil {
			t.Fatalf("Compile(%#q) = %v", src, err)
		}
		if got, err := p.EvalBool(&Input{Raw: []byte(body)}); err != nil || got != want {
			t.Errorf("EvalBool(%#q, %s) = %v, %v; want %v", src, body, got, err, want)
		}
	}
	run(`msg.level == env.LEVEL`, `{"level": "info"}`, false)
	run(`msg.level == env["LEVEL"]`, `{"level": "x\" || \"a\" == \"a"}`, true)
	run(`msg.id > int(env.MIN)`, `{"id": 4}`, true)
	run(`env.?UNSET.orValue("d") == "d" && !has(env.UNSET)`, `{}`, true)
}

func TestEnvReadsAreChecked(t *testing.T) {
	lookup := lookupOf(map[string]string{"A": "1"})
	for src, want := range map[string]string{
		`env.NOPE == "x"`:          `1:4: environment variable NOPE is not set (set it, or give a default: env.?NOPE.orValue("value"))`,
		`env[msg.name] == "x"`:     `1:1: env may only be read as env.NAME`,
		`size(env) > 0`:            `1:6: env may only be read as env.NAME`,
		`[1].exists(env, env > 0)`: ``, // a comprehension variable named env shadows it
	} {
		_, err := Compile(src, WithEnv(lookup))
		switch {
		case want == "" && err != nil:
			t.Errorf("Compile(%#q) = %v, want no error", src, err)
		case want != "" && (err == nil || !strings.HasPrefix(err.Error(), want)):
			t.Errorf("Compile(%#q) = %v, want %q", src, err, want)
		}
	}
}

// No evaluation error quotes an environment value (issue 20 item 11).
func TestEnvValuesAppearInNoError(t *testing.T) {
	const secret = "hunter2pw"
	lookup := lookupOf(map[string]string{"KEY": secret, "MINID": secret})
	for _, src := range []string{`msg[env.KEY] == 1`, `msg.id > int(env.MINID)`, `{env.KEY: 1}[msg.k] == 1`} {
		p, err := Compile(src, WithEnv(lookup))
		if err != nil {
			t.Fatalf("Compile(%#q) = %v", src, err)
		}
		_, err = p.EvalBool(&Input{Raw: []byte(`{"id": 1, "k": "other"}`)})
		if err == nil {
			t.Fatalf("EvalBool(%#q) succeeded, want an error", src)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("EvalBool(%#q) error quotes the value: %v", src, err)
		}
	}
}
