package dsl_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/pipe-dsl/pipe/dsl"
)

// On every example pipeline and test file, pipe fmt keeps each comment
// and every value, and formatting its output again changes nothing.
func TestFmtKeepsCommentsAndIsIdempotent(t *testing.T) {
	files, _ := filepath.Glob("../pipelines/*.yaml")
	if len(files) < 4 {
		t.Fatalf("found only %d example files", len(files))
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			once, err := dsl.Format(file, src)
			if err != nil {
				t.Fatal(err)
			}
			twice, err := dsl.Format(file, once)
			if err != nil {
				t.Fatal(err)
			}
			if string(once) != string(twice) {
				t.Errorf("formatting is not idempotent: once\n%s\ntwice\n%s", once, twice)
			}
			var before, after any
			if err := yaml.Unmarshal(src, &before); err != nil {
				t.Fatal(err)
			}
			if err := yaml.Unmarshal(once, &after); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(before, after) {
				t.Errorf("formatting changed the values:\n%s", once)
			}
			for _, c := range comments(t, src) {
				if !strings.Contains(string(once), c) {
					t.Errorf("formatting lost the comment %q", c)
				}
			}
		})
	}
}

// comments returns every comment line of a YAML document.
func comments(t *testing.T, src []byte) []string {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		for _, c := range []string{n.HeadComment, n.LineComment, n.FootComment} {
			for _, l := range strings.Split(c, "\n") {
				if l = strings.TrimSpace(l); l != "" {
					out = append(out, l)
				}
			}
		}
		for _, k := range n.Content {
			walk(k)
		}
	}
	walk(&doc)
	if len(out) == 0 && strings.Contains(string(src), "#") {
		t.Fatal("found no comments in a file that has some")
	}
	return out
}

// FuzzFormat checks that formatting keeps the values and is idempotent.
// Run it with a short -fuzzminimizetime (make fuzz does): minimizing an
// input grown from a 2-4 KB example takes minutes at the default 60 s per
// input, and no new input is tried meanwhile.
func FuzzFormat(f *testing.F) {
	files, _ := filepath.Glob("../pipelines/*.yaml")
	for _, file := range files {
		if src, err := os.ReadFile(file); err == nil {
			f.Add(src)
		}
	}
	f.Add([]byte("name: p\nsource: {generate: {count: 1}}\n# c\nstages:\n  - filter: msg.a > 1 # keep\n\n  - map: '{\"b\": 1}'\nsink: {drop: {}}\n"))
	f.Add([]byte("# head\n\na: 1 # line\n\n\nb:\n    - x\n\n    - {y: 2}\n# foot\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		once, err := dsl.Format("f.yaml", src)
		if err != nil {
			return
		}
		twice, err := dsl.Format("f.yaml", once)
		if err != nil {
			t.Fatalf("formatted output does not parse: %v\n%s", err, once)
		}
		if string(once) != string(twice) {
			t.Fatalf("not idempotent: once\n%s\ntwice\n%s", once, twice)
		}
		var before, after any
		if yaml.Unmarshal(src, &before) != nil || yaml.Unmarshal(once, &after) != nil {
			return
		}
		if !reflect.DeepEqual(before, after) {
			t.Fatalf("values changed:\n%s\n->\n%s", src, once)
		}
	})
}

func TestFormatRefusesAFileThatIsNotAMapping(t *testing.T) {
	for src, want := range map[string]string{
		"just text\n": "x.yaml:1:1: a pipeline file is a mapping (name:, source:, stages:, ...), not a string",
		"- a\n- b\n":  "x.yaml:1:1: a pipeline file is a mapping (name:, source:, stages:, ...), not a list",
	} {
		if _, err := dsl.Format("x.yaml", []byte(src)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Format(%q) = %v, want %q", src, err, want)
		}
	}
}
