package dsl_test

import (
	"context"
	"strings"
	"testing"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/dsl"
	"github.com/pipe-dsl/pipe/pipeline"
)

// compileErr parses and compiles src and returns the error text, "" if none.
func compileErr(t *testing.T, src string) string {
	t.Helper()
	c, err := dsl.Parse("p.yaml", []byte(src), nil)
	if err == nil {
		_, err = dsl.Compile(c, nil)
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestPolicyKeysCompileOnSinksAndStages(t *testing.T) {
	src := `name: policies
source: {generate: {message: '{"a": 1}', count: 1}}
stages:
  - map: '{"b": msg.a}'
    retry: {max_attempts: 4, base_delay: 50ms, max_delay: 1s, multiplier: 1.5, jitter: equal,
            max_elapsed: 10s, retry_on: 'error.kind == "timeout" || error.status in [502, 503]'}
    timeout: 2s
sink:
  drop: {}
  retry: 5
  breaker: {failure_threshold: 3, failure_rate: 0.5, window: 10s, min_calls: 4,
            recovery_timeout: 5s, half_open_max_calls: 2, success_threshold: 2, on_open: dead_letter}
  timeout: 500ms
dead_letter:
  drop: {}
  retry: {}
`
	if err := compileErr(t, src); err != "" {
		t.Fatalf("Compile: %s", err)
	}
}

func TestPolicyErrorsArePositioned(t *testing.T) {
	for _, tc := range []struct {
		name, policy string
		want         []string
	}{
		{"typo in retry", "retry: {max_attemps: 3}",
			[]string{`p.yaml:4:11: drop.retry: unknown key "max_attemps"; did you mean "max_attempts"?`}},
		{"typo in breaker", "breaker: {recovery_timout: 1s}",
			[]string{`p.yaml:4:13: drop.breaker: unknown key "recovery_timout"; did you mean "recovery_timeout"?`}},
		{"typo in on_open", "breaker: {on_open: deadletter}",
			[]string{`p.yaml:4:22: drop.breaker.on_open: "deadletter" is not one of block, dead_letter; did you mean "dead_letter"?`}},
		{"typo in jitter", "retry: {jitter: ful}",
			[]string{`p.yaml:4:19: drop.retry.jitter: "ful" is not one of full, equal, none; did you mean "full"?`}},
		{"max_attempts below 1", "retry: {max_attempts: 0}",
			[]string{`p.yaml:4:25: drop.retry.max_attempts: "0" is below the minimum 1`}},
		{"negative delay", "retry: {base_delay: -1s}",
			[]string{`p.yaml:4:23: drop.retry.base_delay: negative duration "-1s"`}},
		{"multiplier below 1", "retry: {multiplier: 0.5}",
			[]string{`p.yaml:4:23: drop.retry.multiplier: "0.5" is below the minimum 1`}},
		{"max_delay below base_delay", "retry: {base_delay: 2s, max_delay: 1s}",
			[]string{`p.yaml:4:38: drop.retry.max_delay: 1s is less than base_delay 2s`}},
		{"bad retry_on", "retry: {retry_on: 'error.kind == 3 &&'}",
			[]string{`p.yaml:4:`, `drop.retry.retry_on: `}},
		{"retry_on reads msg", "retry: {retry_on: 'msg.a == 1'}",
			[]string{`p.yaml:4:22: drop.retry.retry_on: undeclared reference to 'msg'`}},
		{"failure_rate above 1", "breaker: {failure_rate: 1.5}",
			[]string{`p.yaml:4:27: drop.breaker.failure_rate: "1.5" is above the maximum 1`}},
		{"breaker that never opens", "breaker: {failure_threshold: 0}",
			[]string{`p.yaml:4:12: drop.breaker: failure_threshold and failure_rate are both 0`}},
		{"negative timeout", "timeout: -1s",
			[]string{`p.yaml:4:12: drop.timeout: negative duration "-1s"`}},
		{"zero timeout", "timeout: 0",
			[]string{`p.yaml:4:12: drop.timeout: must be positive, got "0"`}},
		{"retry as a list", "retry: [1]",
			[]string{`p.yaml:4:10: drop.retry: expected a mapping or a number of attempts, got a list`}},
		{"typo in key", "retyr: 3",
			[]string{`p.yaml:4:3: `, `did you mean "retry"?`}},
	} {
		src := "source: {generate: {message: '1', count: 1}}\nsink:\n  drop: {}\n  " + tc.policy + "\n"
		got := compileErr(t, src)
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: error\n%s\nwant it to contain\n%s", tc.name, got, w)
			}
		}
	}
}

func TestPolicyOnAStageWithItsOwnLoopIsAnError(t *testing.T) {
	reg := component.NewRegistry()
	for _, k := range []struct {
		role component.Role
		name string
	}{{component.RoleSource, "generate"}, {component.RoleSink, "drop"}} {
		kind, _ := component.Default.Lookup(k.role, k.name)
		reg.MustRegister(*kind)
	}
	reg.MustRegister(component.Stage("loop", "Owns its loop.", struct{}{},
		func(*struct{}, component.Env) (any, error) { return loopStage{}, nil }))
	src := "source: {generate: {message: '1', count: 1}}\nstages:\n  - loop: {}\n    retry: 3\nsink: {drop: {}}\n"
	c, err := dsl.Parse("p.yaml", []byte(src), &dsl.Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	_, err = dsl.Compile(c, &dsl.CompileOptions{Options: dsl.Options{Registry: reg}})
	if err == nil || !strings.Contains(err.Error(), `p.yaml:4:12: retry: not supported on stage "loop"`) {
		t.Errorf("Compile error = %v", err)
	}
}

type loopStage struct{}

func (loopStage) Run(context.Context, <-chan *pipeline.Message, pipeline.Outlet) error { return nil }

func TestTheSchemaChecksPolicyKeys(t *testing.T) {
	s := compileSchema(t)
	head := "source: {generate: {message: '1'}}\nsink:\n  drop: {}\n  "
	for policy, valid := range map[string]bool{
		"retry: {max_attempts: 3, base_delay: 1s, jitter: none, retry_on: 'true'}": true,
		"retry: 4": true,
		"breaker: {failure_rate: 0.5, on_open: dead_letter}": true,
		"timeout: 2s":                true,
		"retry: {max_attemps: 3}":    false,
		"retry: {max_attempts: 0}":   false,
		"breaker: {on_open: maybe}":  false,
		"breaker: {failure_rate: 2}": false,
		"timeout: soon":              false,
	} {
		err := s.Validate(asJSON(t, []byte(head+policy+"\n")))
		if (err == nil) != valid {
			t.Errorf("schema on %q: err = %v, want valid %v", policy, err, valid)
		}
	}
}
