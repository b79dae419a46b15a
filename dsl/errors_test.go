package dsl

import (
	"errors"
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestPosString(t *testing.T) {
	for _, tc := range []struct {
		pos  Pos
		want string
	}{
		{Pos{"p.yaml", 3, 7}, "p.yaml:3:7"},
		{Pos{"p.yaml", 3, 0}, "p.yaml:3"},
		{Pos{"p.yaml", 0, 0}, "p.yaml"},
		{Pos{"", 3, 7}, "3:7"},
	} {
		if got := tc.pos.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.pos, got, tc.want)
		}
	}
}

func TestNodePos(t *testing.T) {
	if got, want := NodePos("p.yaml", &yaml.Node{Line: 2, Column: 5}), (Pos{"p.yaml", 2, 5}); got != want {
		t.Errorf("NodePos(node at 2:5) = %v, want %v", got, want)
	}
	if got, want := NodePos("p.yaml", nil), (Pos{File: "p.yaml"}); got != want {
		t.Errorf("NodePos(nil) = %v, want %v", got, want)
	}
}

func TestErrorsSortDedupe(t *testing.T) {
	var es Errors
	if es.Err() != nil {
		t.Fatalf("Errors{}.Err() = %v, want nil", es.Err())
	}
	es.Add(Pos{"b.yaml", 1, 1}, "in b")
	es.Add(Pos{"a.yaml", 9, 2}, "late %d", 9)
	es.Add(Pos{"a.yaml", 2, 8}, "second at 2:8")
	es.Add(Pos{"a.yaml", 2, 3}, "early")
	es.Add(Pos{"a.yaml", 2, 8}, "first at 2:8")
	es.Add(Pos{"a.yaml", 2, 8}, "second at 2:8")
	want := strings.Join([]string{
		"a.yaml:2:3: early",
		"a.yaml:2:8: second at 2:8",
		"a.yaml:2:8: first at 2:8",
		"a.yaml:9:2: late 9",
		"b.yaml:1:1: in b",
	}, "\n")
	if got := es.Error(); got != want {
		t.Errorf("Errors.Error() =\n%s\nwant\n%s", got, want)
	}
	err := es.Err()
	var list Errors
	if !errors.As(err, &list) || len(list) != 5 {
		t.Fatalf("errors.As(Err(), *Errors) = %v with %d errors, want 5", err, len(list))
	}
	if len(es) != 6 {
		t.Errorf("Err() changed the receiver: len = %d, want 6", len(es))
	}
}

func TestRender(t *testing.T) {
	src := map[string][]byte{
		"p.yaml":    []byte("name: demo\nstages:\n  - filtr: {}\nnote:\t\"tab\"\r\nend: x\n"),
		"long.yaml": []byte("k: " + strings.Repeat("a", 150) + "X" + strings.Repeat("b", 150) + "\n"),
		"ctl.yaml":  []byte("k: \x1b[31mred\n"),
		"bin.yaml":  []byte("\x00\xff\xfe\x1b]0;pwned\x07\n"),
	}
	for _, tc := range []struct {
		name string
		errs []*Error
		want string
	}{{
		name: "caret under the column, sorted and deduplicated",
		errs: []*Error{
			{Pos{"p.yaml", 3, 5}, `unknown stage kind "filtr"; did you mean "filter"?`},
			{Pos{"p.yaml", 1, 7}, `unsupported name`},
			{Pos{"p.yaml", 3, 5}, `unknown stage kind "filtr"; did you mean "filter"?`},
		},
		want: `p.yaml:1:7: unsupported name
 | name: demo
 |       ^
p.yaml:3:5: unknown stage kind "filtr"; did you mean "filter"?
 |   - filtr: {}
 |     ^
`,
	}, {
		name: "tabs expand to 4 columns in line and caret alike; CR dropped",
		errs: []*Error{{Pos{"p.yaml", 4, 7}, "bad note"}},
		want: "p.yaml:4:7: bad note\n | note:   \"tab\"\n |         ^\n",
	}, {
		name: "column past the end points after the line",
		errs: []*Error{{Pos{"p.yaml", 5, 20}, "unexpected end"}},
		want: "p.yaml:5:20: unexpected end\n | end: x\n |       ^\n",
	}, {
		name: "no line, unknown file, line out of range: message only",
		errs: []*Error{
			{Pos{"p.yaml", 0, 0}, "whole file"},
			{Pos{"other.yaml", 1, 1}, "not in src"},
			{Pos{"p.yaml", 99, 1}, "beyond"},
		},
		want: "other.yaml:1:1: not in src\np.yaml: whole file\np.yaml:99:1: beyond\n",
	}, {
		name: "long lines are cut around the caret",
		errs: []*Error{{Pos{"long.yaml", 1, 154}, "here"}},
		want: "long.yaml:1:154: here\n | ..." + strings.Repeat("a", 33) + "X" + strings.Repeat("b", 66) + "...\n |    " + strings.Repeat(" ", 33) + "^\n",
	}, {
		name: "control characters cannot reach the terminal",
		errs: []*Error{{Pos{"ctl.yaml", 1, 4}, "bad"}},
		want: "ctl.yaml:1:4: bad\n | k: \\x1b[31mred\n |    ^\n",
	}, {
		name: "binary data is not shown",
		errs: []*Error{{Pos{"bin.yaml", 1, 1}, "bad"}},
		want: "bin.yaml:1:1: bad\n | (binary data, not shown)\n",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			Errors(tc.errs).Render(&b, src)
			if got := b.String(); got != tc.want {
				t.Errorf("Render() =\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func ExampleErrors_Render() {
	src := []byte("name: demo\nstages:\n  - filtr: {expr: 'x > 1'}\n")
	var errs Errors
	errs.Add(Pos{"pipeline.yaml", 3, 5}, "unknown stage kind %q; did you mean %q?", "filtr", "filter")
	errs.Render(os.Stdout, map[string][]byte{"pipeline.yaml": src})
	// Output:
	// pipeline.yaml:3:5: unknown stage kind "filtr"; did you mean "filter"?
	//  |   - filtr: {expr: 'x > 1'}
	//  |     ^
}
