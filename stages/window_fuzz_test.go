package stages

import (
	"strings"
	"testing"
)

// FuzzParseAggregate: any aggregate text is parsed or refused with an
// error naming the aggregate, never a panic.
func FuzzParseAggregate(f *testing.F) {
	for _, s := range []string{"count()", "sum(msg.a)", "quantile(msg.x, 0.5)", `collect("a,(b" + msg.id)`,
		"sum(", "max(msg.a))", "quantile(msg.x, 2)", "first([1, {\"a\": (2)}][0])", "min('\\')", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		_, _, err := parseAggregate("x", src, 10)
		if err != nil && !strings.HasPrefix(err.Error(), `aggregate "x": `) {
			t.Errorf("parseAggregate(%q) = %v, want an error naming the aggregate", src, err)
		}
	})
}
