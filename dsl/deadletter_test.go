package dsl_test

import (
	"strings"
	"testing"

	"github.com/pipe-dsl/pipe/dsl"
)

// Given a mode that sends messages to the dead-letter sink and no
// dead_letter sink, validate refuses it at the mode's position with a hint;
// with a dead_letter sink the same file is valid.
func TestDeadLetterModesNeedADeadLetterSink(t *testing.T) {
	for _, tc := range []struct {
		name, src, want string
	}{
		{"throttle on_limit", `
name: t
source: {generate: {count: 1, message: '{}'}}
stages:
  - throttle: {rate: 10/s, on_limit: dead_letter}
sink: {drop: {}}
`, "t.yaml:5:38: on_limit: dead_letter needs a dead_letter sink; add a top-level `dead_letter:`"},
		{"breaker on_open in a policy block", `
name: t
source: {generate: {count: 1, message: '{}'}}
sink:
  drop: {}
  breaker: {on_open: dead_letter}
`, "t.yaml:6:22: on_open: dead_letter needs a dead_letter sink"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dsl.Parse("t.yaml", []byte(tc.src), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse = %v, want %q", err, tc.want)
			}
			if strings.Count(err.Error(), "\n") != 0 {
				t.Errorf("want one error, got:\n%v", err)
			}
			withDLQ := tc.src + "dead_letter: {drop: {}}\n"
			if _, err := dsl.Parse("t.yaml", []byte(withDLQ), nil); err != nil {
				t.Errorf("with a dead_letter sink: Parse = %v, want nil", err)
			}
		})
	}
}
