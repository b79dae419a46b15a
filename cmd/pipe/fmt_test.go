package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// On every example pipeline and test file, pipe fmt keeps each comment
// and every value, and formatting its output again changes nothing.
func TestFmtKeepsCommentsAndIsIdempotent(t *testing.T) {
	files, _ := filepath.Glob("../../pipelines/*.yaml")
	if len(files) < 4 {
		t.Fatalf("found only %d example files", len(files))
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			once, err := formatYAML(file, src)
			if err != nil {
				t.Fatal(err)
			}
			twice, err := formatYAML(file, once)
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

func TestFmtFlags(t *testing.T) {
	messy := "# orders\nname: x   # the name\nsource:\n    generate: {count: 1}\n\n\n\nsink:\n        stdout: {}\n"
	const want = "# orders\nname: x # the name\nsource:\n  generate: {count: 1}\n\nsink:\n  stdout: {}\n"
	file := writeFile(t, "messy.yaml", messy)
	if code, out, stderr := runCLI("fmt", file); code != exitOK || out != want {
		t.Errorf("pipe fmt = %d, %q\n%s\nwant\n%s", code, stderr, out, want)
	}
	if code, out, _ := runCLI("fmt", "-l", file); code != exitOK || out != file+"\n" {
		t.Errorf("pipe fmt -l = %d, %q, want the file listed", code, out)
	}
	if code, out, _ := runCLI("fmt", "-w", file); code != exitOK || out != "" {
		t.Errorf("pipe fmt -w = %d, %q, want no output", code, out)
	}
	if got, _ := os.ReadFile(file); string(got) != want {
		t.Errorf("after -w the file holds\n%s\nwant\n%s", got, want)
	}
	if code, out, _ := runCLI("fmt", "-l", file); code != exitOK || out != "" {
		t.Errorf("pipe fmt -l on a formatted file = %d, %q, want nothing listed", code, out)
	}
	bad := writeFile(t, "bad.yaml", "name: x\nsource: {generate: {count: 1}\nsink: {}\n")
	code, _, stderr := runCLI("fmt", bad)
	if code != exitConfig || !strings.Contains(stderr, "bad.yaml:") {
		t.Errorf("parse error: exit %d, stderr %q; want %d and a file:line position", code, stderr, exitConfig)
	}
	if code, _, _ := runCLI("fmt"); code != exitConfig {
		t.Errorf("no file: exit %d, want %d", code, exitConfig)
	}
}

// Whatever parses formats to a document with the same values, and
// formatting that output again changes nothing.
func FuzzFormatYAML(f *testing.F) {
	files, _ := filepath.Glob("../../pipelines/*.yaml")
	for _, file := range files {
		if src, err := os.ReadFile(file); err == nil {
			f.Add(src)
		}
	}
	f.Add([]byte("# head\n\na: 1 # line\n\n\nb:\n    - x\n\n    - {y: 2}\n# foot\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		once, err := formatYAML("f.yaml", src)
		if err != nil {
			return
		}
		twice, err := formatYAML("f.yaml", once)
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
