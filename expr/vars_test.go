package expr

import (
	"strings"
	"testing"
)

func TestWithVariablesEvaluatesInputVars(t *testing.T) {
	p, err := Compile(`{"id": msg.id, "name": response.name, "ok": status == 200}`, WithVariables("response", "status"))
	if err != nil {
		t.Fatal(err)
	}
	in := Input{Raw: []byte(`{"id": 7}`), Vars: map[string]any{
		"response": map[string]any{"name": "ada"},
		"status":   int64(200),
	}}
	body, _, err := p.EvalJSON(&in)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(body), `{"id":7,"name":"ada","ok":true}`; got != want {
		t.Errorf("EvalJSON = %s, want %s", got, want)
	}
}

func TestVariablesAreUndeclaredWithoutOption(t *testing.T) {
	_, err := Compile(`response.name`)
	if err == nil || !strings.Contains(err.Error(), "undeclared reference to 'response'") {
		t.Errorf("Compile(response.name) err = %v, want undeclared reference", err)
	}
}

func TestMissingVarIsAnEvalError(t *testing.T) {
	p, err := Compile(`response`, WithVariables("response"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Eval(&Input{}); err == nil {
		t.Error("Eval without Vars succeeded, want an error")
	}
}
