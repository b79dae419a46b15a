package expr

import (
	"strings"
	"testing"
)

// An undeclared reference suggests the nearest declared variable, only
// when it is close (issue 20 item 19).
func TestUndeclaredReferenceSuggestsAVariable(t *testing.T) {
	for src, want := range map[string]string{
		`message.id > 1`:   "1:1: undeclared reference to 'message'; did you mean 'msg'?",
		`mgs.id > 1`:       "1:1: undeclared reference to 'mgs'; did you mean 'msg'?",
		`metadata.k == ""`: "1:1: undeclared reference to 'metadata'; did you mean 'meta'?",
		`sequence > 1`:     "1:1: undeclared reference to 'sequence'; did you mean 'seq'?",
		`foo == 1`:         "1:1: undeclared reference to 'foo'",
		`level == "x"`:     "1:1: undeclared reference to 'level'",
	} {
		_, err := Compile(src)
		if err == nil || err.Error() != want {
			t.Errorf("Compile(%#q) = %v, want %q", src, err, want)
		}
	}
	if _, err := Compile(`respnse.name`, WithVariables("response")); err == nil || !strings.HasSuffix(err.Error(), "did you mean 'response'?") {
		t.Errorf("Compile(`respnse.name`, WithVariables(response)) = %v, want a suggestion", err)
	}
}

// A run-time "no such overload" names the operand types (issue 20 item 19).
func TestNoSuchOverloadNamesTheTypes(t *testing.T) {
	body := []byte(`{"name": "x", "n": 1, "l": [1]}`)
	for src, want := range map[string]string{
		`msg.name > 1`:         "1:10: no such overload: string > int",
		`msg.name + 1 == 2`:    "1:10: no such overload: string + int",
		`-msg.name == 1`:       "1:1: no such overload: -string",
		`size(msg.n) == 1`:     "1:5: no such overload: size(int)",
		`msg.l.all(x, x > "")`: "1:16: no such overload: int > string",
	} {
		p, err := Compile(src)
		if err != nil {
			t.Fatalf("Compile(%#q) = %v", src, err)
		}
		if _, err := p.Eval(&Input{Raw: body}); err == nil || err.Error() != want {
			t.Errorf("Eval(%#q) = %v, want %q", src, err, want)
		}
	}
}
