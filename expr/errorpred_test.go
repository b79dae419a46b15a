package expr

import (
	"errors"
	"strings"
	"testing"
)

func TestErrorPredicate(t *testing.T) {
	for _, tc := range []struct {
		src     string
		kind    string
		status  int
		message string
		want    bool
	}{
		{`error.kind == "timeout"`, "timeout", 0, "", true},
		{`error.status >= 500`, "status", 503, "", true},
		{`error.status in [408, 429]`, "status", 404, "", false},
		{`error.message.contains("busy")`, "error", 0, "server busy", true},
		{`error.kind == "status" && error.status == 503.0`, "status", 503, "", true},
	} {
		p, err := CompileErrorPredicate(tc.src)
		if err != nil {
			t.Fatalf("CompileErrorPredicate(%q): %v", tc.src, err)
		}
		got, err := p.Match(tc.kind, tc.status, tc.message)
		if err != nil || got != tc.want {
			t.Errorf("%q.Match(%s, %d, %q) = %v, %v; want %v", tc.src, tc.kind, tc.status, tc.message, got, err, tc.want)
		}
	}
}

func TestErrorPredicateCompileErrors(t *testing.T) {
	for src, want := range map[string]string{
		`msg.a == 1`:          "1:1: undeclared reference to 'msg'",
		`error.kind + 1`:      "want bool",
		"error.kind == \n  )": "2:3:",
	} {
		_, err := CompileErrorPredicate(src)
		var list Errors
		if !errors.As(err, &list) || !strings.Contains(err.Error(), want) {
			t.Errorf("CompileErrorPredicate(%q) = %v, want Errors containing %q", src, err, want)
		}
	}
	p, _ := CompileErrorPredicate(`error.nope == 1`)
	if _, err := p.Match("error", 0, ""); err == nil {
		t.Error("Match with a missing key = nil error")
	}
}
