package dsl_test

import (
	"strings"
	"testing"

	"github.com/pipe-dsl/pipe/dsl"
)

// Each config error is the real problem only, said plainly.
func TestConfigErrorsSayTheRealProblemOnly(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string // every error, in order
	}{
		{"an unknown top-level key reports no missing source", "name: x\nsourc: {stdin: {}}\nsink: {drop: {}}\n",
			[]string{`x.yaml:2:1: unknown top-level key "sourc"; did you mean "source"?`}},
		{"an unknown top-level key reports no missing sinks (graph form)", "name: x\nsources: {a: {stdin: {}}}\nsinkz: {b: {inputs: [a], drop: {}}}\n",
			[]string{`x.yaml:3:1: unknown top-level key "sinkz"; did you mean`}},
		{"an unknown field reports no missing required key", "name: x\nsource: {stdin: {}}\nsink: {file: {pth: out.ndjson}}\n",
			[]string{`x.yaml:3:15: file: unknown key "pth"; did you mean "path"?`}},
		{"a far word gets no suggestion", "name: x\nsource: {stdin: {}}\nsink: {drop: {}}\nretries: 3\n",
			[]string{`x.yaml:4:1: unknown top-level key "retries" (expected one of:`}},
		{"a tab in the indentation says so", "name: x\nsource:\n\tstdin: {}\nsink: {drop: {}}\n",
			[]string{`x.yaml:3:1: invalid YAML: found character that cannot start any token (a tab in the indentation: YAML indents with spaces only)`}},
		{"binary says it is not text", "k: \x80\x81garbage\n",
			[]string{`the file is not UTF-8 text; is it binary?`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := dsl.Parse("x.yaml", []byte(tc.src), nil)
			if err == nil {
				_, err = dsl.Compile(c, nil)
			}
			if err == nil {
				t.Fatal("Parse = nil, want errors")
			}
			got := strings.Split(err.Error(), "\n")
			if len(got) != len(tc.want) {
				t.Fatalf("Parse errors:\n%v\nwant %d: %q", err, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("error %d = %q, want it to contain %q", i, got[i], w)
				}
			}
		})
	}
}

// ${VAR:-default} works inside a flow mapping, where YAML would read its
// braces as the mapping's, and pipe fmt keeps it as written.
func TestAnEnvironmentReferenceWorksInsideAFlowMapping(t *testing.T) {
	src := "name: x\nsource: {generate: {count: ${COUNT:-3}, message: '{\"id\": seq}'}}\nsink: {drop: {}}\n"
	for env, want := range map[string]string{"": "3", "7": "7"} {
		lookup := func(k string) (string, bool) { return env, k == "COUNT" && env != "" }
		c, err := dsl.Parse("x.yaml", []byte(src), &dsl.Options{Lookup: lookup})
		if err != nil {
			t.Fatalf("COUNT=%q: Parse: %v", env, err)
		}
		gen := c.Nodes[0].Body
		if gen.Content[0].Value != "count" || gen.Content[1].Value != want || gen.Content[1].Tag != "!!int" {
			t.Errorf("COUNT=%q: count = %q (%s), want the int %s", env, gen.Content[1].Value, gen.Content[1].Tag, want)
		}
	}
	out, err := dsl.Format("x.yaml", []byte(src))
	if err != nil || string(out) != src {
		t.Errorf("Format = %q, %v; want the file unchanged", out, err)
	}
}
