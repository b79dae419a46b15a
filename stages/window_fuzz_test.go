package stages

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pipe-dsl/pipe/component"
)

// FuzzParseAggregate: any aggregate text is parsed or refused with an
// error at aggregate.x pointing inside the value, never a panic.
func FuzzParseAggregate(f *testing.F) {
	for _, s := range []string{"count()", "sum(msg.a)", "quantile(msg.x, 0.5)", `collect("a,(b" + msg.id)`,
		"sum(", "max(msg.a))", "quantile(msg.x, 2)", "first([1, {\"a\": (2)}][0])", "min('\\')", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		_, _, err := parseAggregate("x", src, 10)
		if err == nil {
			return
		}
		var fe *component.FieldError
		if !errors.As(err, &fe) || strings.Join(fe.Path, ".") != "aggregate.x" || fe.Line != 1 ||
			fe.Col < 1 || fe.Col > utf8.RuneCountInString(src)+1 {
			t.Errorf("parseAggregate(%q) = %#v, want a FieldError at aggregate.x, line 1, a column within the value", src, err)
		}
	})
}
