package dsl

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// srcLaughs is the "billion laughs" document: nine levels of nine aliases
// expand to 9^9 (387 million) strings.
func srcLaughs() string {
	var b strings.Builder
	b.WriteString(`a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]` + "\n")
	for c := 'b'; c <= 'i'; c++ {
		p := string(c - 1)
		b.WriteString(string(c) + ": &" + string(c) + " [" + strings.Repeat("*"+p+",", 8) + "*" + p + "]\n")
	}
	return b.String()
}

func TestLoadYAML(t *testing.T) {
	root, errs := LoadYAML("p.yaml", []byte("name: demo\nsource:\n  kafka: {topic: in}\n"))
	if len(errs) > 0 || root == nil || root.Kind != yaml.MappingNode || len(root.Content) != 4 || root.Content[0].Value != "name" {
		t.Fatalf("LoadYAML(valid) = %v, %v, want the root mapping", root, errs)
	}
	root, errs = LoadYAML("p.yaml", []byte("- a\n- b\n"))
	if len(errs) > 0 || root == nil || root.Kind != yaml.SequenceNode {
		t.Errorf("LoadYAML(list) = %v, %v, want the root sequence (Parse reports its kind)", root, errs)
	}
}

func TestLoadYAMLErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      string
	}{
		{"empty file", "", "p.yaml:1:1: empty pipeline"},
		{"only comments", "# nothing here\n\n", "p.yaml:1:1: empty pipeline"},
		{"empty document", "---\n", "p.yaml:2:1: empty pipeline"},
		{"two documents", "a: 1\n---\nb: 2\n", `p.yaml:2:1: a pipeline file holds one YAML document; remove this second one (or the "---" before it)`},
		{"bad second document", "a: 1\n---\nb: [\n", "p.yaml:4:1: invalid YAML: did not find expected node content"},
		{"mapping value in plain scalar", "a: 1\nb: c: d\n", "p.yaml:2:1: invalid YAML: mapping values are not allowed in this context"},
		{"bad indentation", "a: 1\nb:\n  c: 1\n d: 2\n", "p.yaml:4:1: invalid YAML: did not find expected key"},
		{"stray list item", "x: 1\ny: 2\n- a\n", "p.yaml:3:1: invalid YAML: did not find expected key"},
		{"unclosed flow sequence", "a: [1, 2\nb: 3\n", "p.yaml:2:1: invalid YAML: did not find expected ',' or ']'"},
		{"tab indentation", "a:\n  b: 1\n  \tc: 2\n", "p.yaml:3:3: invalid YAML: found a tab character that violates indentation"},
		{"unknown anchor", "a: 1\nb: [x, *nope]\n", `p.yaml:2:8: invalid YAML: unknown anchor "nope" (define it first with &nope)`},
		{"self-referencing alias", "a: &a [1, *a]\n", "p.yaml:1:11: alias refers to a node that contains it"},
		{"billion laughs", srcLaughs(), "p.yaml:7:11: aliases expand the document to more than 1000000 nodes"},
		{"deep flow sequence", strings.Repeat("[", 10000) + strings.Repeat("]", 10000), "p.yaml:1:101: document nests deeper than 100 levels"},
		{"deep block sequence", strings.Repeat("- ", 10000) + "x\n", "p.yaml:1:201: document nests deeper than 100 levels"},
		{"deep flow mapping", "k: " + strings.Repeat("{a: ", 10000) + "x" + strings.Repeat("}", 10000), "p.yaml:1:397: document nests deeper than 100 levels"},
		{"deeper than yaml.v3 allows", strings.Repeat("[", 10001) + strings.Repeat("]", 10001), "p.yaml:1:1: invalid YAML: exceeded max depth of 10000"},
		{"deep through aliases", "a: &a " + strings.Repeat("[", 60) + strings.Repeat("]", 60) + "\nb: " + strings.Repeat("[", 60) + "*a" + strings.Repeat("]", 60) + "\n",
			"p.yaml:2:64: document nests deeper than 100 levels once aliases are expanded"},
		{"UTF-16", "\xff\xfea\x00:\x001\x00", "p.yaml:1:1: pipeline file is UTF-16; save it as UTF-8"},
		{"too large", "#" + strings.Repeat("x", 1<<20) + "\n", "p.yaml:1:1: pipeline file is too large: 1048578 bytes (the limit is 1048576)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			root, errs := LoadYAML("p.yaml", []byte(tc.src))
			runtime.ReadMemStats(&m1)
			if root != nil || errs.Error() != tc.want {
				t.Errorf("LoadYAML() = %v, %q, want nil, %q", root, errs.Error(), tc.want)
			}
			if mib := (m1.TotalAlloc - m0.TotalAlloc) >> 20; mib > 64 {
				t.Errorf("LoadYAML() allocated %d MiB, want at most 64", mib)
			}
		})
	}
}

// FuzzLoadYAML checks that LoadYAML, and the error machinery applied to
// what it returns, never panic and finish quickly on any input.
func FuzzLoadYAML(f *testing.F) {
	for _, s := range []string{
		"name: demo\nsource:\n  kafka: {topic: in}\nstages:\n  - filter: 'x > 1'\nsink:\n  stdout: {}\n",
		"a: &a [1, *a]\n",
		"k: |\n  ${A:-x}\n",
		"k: \"\\u00e9 ${B}\"\n",
		"a: 1\n---\nb: 2\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		start := time.Now()
		// A hang must become a crasher the fuzzer saves, not a stall.
		hang := time.AfterFunc(20*time.Second, func() { panic(fmt.Sprintf("LoadYAML(%q) hangs", src)) })
		defer hang.Stop()
		root, errs := LoadYAML("f.yaml", src)
		if (root == nil) == (len(errs) == 0) {
			t.Fatalf("LoadYAML() = %v, %v: want exactly one of them", root, errs)
		}
		for _, e := range errs {
			if e.Pos.Line < 1 || e.Pos.Col < 1 {
				t.Errorf("LoadYAML() error without a position: %v", e)
			}
		}
		if root != nil {
			xposCheckAll(t, src, root)
			_, ierrs := Interpolate("f.yaml", root, func(string) (string, bool) { return "v", true })
			errs = append(errs, ierrs...)
			var walk func(n *yaml.Node, depth int)
			walk = func(n *yaml.Node, depth int) {
				if depth > 200 {
					t.Fatalf("tree deeper than LoadYAML allows")
				}
				if n.Kind == yaml.ScalarNode {
					ExprPos("f.yaml", src, n, 1, 1)
					ExprPos("f.yaml", src, n, 2, 3)
					p := ExprPos("f.yaml", src, n, 1, len(n.Value)+1)
					errs.Add(p, "end of %q", n.Value)
				}
				for _, c := range n.Content {
					walk(c, depth+1)
				}
			}
			walk(root, 0)
		}
		var b strings.Builder
		errs.Render(&b, map[string][]byte{"f.yaml": src})
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("LoadYAML() and friends took %v", d)
		}
	})
}

// xposCheckAll checks that ExprPos maps every visible character of every
// plain, single-quoted and block scalar under n to that same character in
// src.
func xposCheckAll(t *testing.T, src []byte, n *yaml.Node) {
	seen := map[*yaml.Node]bool{}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if seen[n] {
			return
		}
		seen[n] = true
		for _, c := range n.Content {
			walk(c)
		}
		if n.Kind != yaml.ScalarNode || n.Style&yaml.DoubleQuotedStyle != 0 {
			return
		}
		line, col := 1, 1
		for i, r := range []rune(n.Value) {
			if i > 200 {
				break
			}
			if r != ' ' && r != '\t' && r != '\n' && r != '\r' && r != 0xFEFF {
				p := ExprPos("f.yaml", src, n, line, col)
				if got := xposRuneAt(string(src), p); got != r {
					t.Fatalf("ExprPos(%q, %d, %d) = %v, at %q, want %q", n.Value, line, col, p, got, r)
				}
			}
			if r == '\n' {
				line, col = line+1, 1
			} else {
				col++
			}
		}
	}
	walk(n)
}
