package dsl

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const xposDoc = `plain: size(x) > 0
single: 'x == ''a'' && y'
double: "x == \"a\" && \u00e9 && y"
lit: |
  a &&
    b
  c
fold: >
  a &&
  b

  c
tagged: !!str  x && y
multi: first
  second third
flow: [a + b, "c + d"]
explicit: |2
    indented
nested:
  deep:
    expr: >-
      one
      two
escapes: "a &&\r\n  b"
`

// xposFind returns the scalar at the dotted path (a number indexes a
// sequence) in the mapping root.
func xposFind(t *testing.T, root *yaml.Node, path string) *yaml.Node {
	t.Helper()
	n := root
	for _, key := range strings.Split(path, ".") {
		switch n.Kind {
		case yaml.SequenceNode:
			n = n.Content[int(key[0]-'0')]
		case yaml.MappingNode:
			n = interpValue(t, n, key)
		}
	}
	return n
}

// xposRuneAt returns the character at p in src, or 0 past the end of its line.
func xposRuneAt(src string, p Pos) rune {
	lines := errLines(src)
	if p.Line < 1 || p.Line > len(lines) {
		return -1
	}
	r := []rune(lines[p.Line-1] + "\n")
	if p.Col < 1 || p.Col > len(r) {
		return -1
	}
	return r[p.Col-1]
}

func TestExprPos(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(xposDoc), &doc); err != nil {
		t.Fatal(err)
	}
	root := doc.Content[0]
	for _, tc := range []struct {
		path      string
		line, col int // in the value
		want      Pos
		wantRune  rune // the character at want in the file
	}{
		{"plain", 1, 6, Pos{"p.yaml", 1, 13}, 'x'},
		{"plain", 1, 1, Pos{"p.yaml", 1, 8}, 's'},
		{"plain", 1, 12, Pos{"p.yaml", 1, 19}, '\n'}, // just past the end
		{"plain", 9, 9, Pos{"p.yaml", 1, 19}, '\n'},
		{"single", 1, 13, Pos{"p.yaml", 2, 24}, 'y'},
		{"single", 1, 6, Pos{"p.yaml", 2, 15}, '\''},
		{"single", 1, 7, Pos{"p.yaml", 2, 17}, 'a'},
		{"double", 1, 18, Pos{"p.yaml", 3, 34}, 'y'},
		{"double", 1, 13, Pos{"p.yaml", 3, 24}, '\\'}, // \u00e9
		{"double", 1, 6, Pos{"p.yaml", 3, 15}, '\\'},  // \"
		{"lit", 1, 1, Pos{"p.yaml", 5, 3}, 'a'},
		{"lit", 2, 3, Pos{"p.yaml", 6, 5}, 'b'},
		{"lit", 3, 1, Pos{"p.yaml", 7, 3}, 'c'},
		{"fold", 1, 6, Pos{"p.yaml", 10, 3}, 'b'},
		{"fold", 2, 1, Pos{"p.yaml", 12, 3}, 'c'},
		{"tagged", 1, 6, Pos{"p.yaml", 13, 21}, 'y'},
		{"multi", 1, 7, Pos{"p.yaml", 15, 3}, 's'},
		{"multi", 1, 14, Pos{"p.yaml", 15, 10}, 't'},
		{"flow.0", 1, 5, Pos{"p.yaml", 16, 12}, 'b'},
		{"flow.1", 1, 5, Pos{"p.yaml", 16, 20}, 'd'},
		{"explicit", 1, 3, Pos{"p.yaml", 18, 5}, 'i'},
		{"nested.deep.expr", 1, 5, Pos{"p.yaml", 23, 7}, 't'},
		{"escapes", 2, 3, Pos{"p.yaml", 24, 21}, 'b'},
	} {
		n := xposFind(t, root, tc.path)
		got := ExprPos("p.yaml", []byte(xposDoc), n, tc.line, tc.col)
		if got != tc.want {
			t.Errorf("ExprPos(%s, %d, %d) = %v, want %v", tc.path, tc.line, tc.col, got, tc.want)
		}
		if r := xposRuneAt(xposDoc, got); r != tc.wantRune {
			t.Errorf("ExprPos(%s, %d, %d) = %v at %q, want %q", tc.path, tc.line, tc.col, got, r, tc.wantRune)
		}
	}
}

func TestExprPosFallback(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(xposDoc), &doc); err != nil {
		t.Fatal(err)
	}
	root := doc.Content[0]
	for _, tc := range []struct {
		name      string
		src       []byte
		n         *yaml.Node
		line, col int
		want      Pos
	}{
		{"no source, plain", nil, xposFind(t, root, "plain"), 1, 6, Pos{"p.yaml", 1, 13}},
		{"no source, single-quoted", nil, xposFind(t, root, "single"), 1, 13, Pos{"p.yaml", 2, 24}},
		{"no source, double-quoted", nil, xposFind(t, root, "double"), 1, 8, Pos{"p.yaml", 3, 18}},
		{"no source, block", nil, xposFind(t, root, "lit"), 2, 3, Pos{"p.yaml", 4, 6}},
		{"value no longer matches", []byte(xposDoc), &yaml.Node{Kind: yaml.ScalarNode, Value: "size(y) > 0", Line: 1, Column: 8}, 1, 8, Pos{"p.yaml", 1, 15}},
		{"nil node", []byte(xposDoc), nil, 1, 1, Pos{File: "p.yaml"}},
		{"mapping", []byte(xposDoc), root, 1, 1, Pos{"p.yaml", 1, 1}},
		{"position beyond the file", []byte(xposDoc), &yaml.Node{Kind: yaml.ScalarNode, Value: "x", Line: 99, Column: 1}, 1, 1, Pos{"p.yaml", 99, 1}},
	} {
		if got := ExprPos("p.yaml", tc.src, tc.n, tc.line, tc.col); got != tc.want {
			t.Errorf("ExprPos(%s, %d, %d) = %v, want %v", tc.name, tc.line, tc.col, got, tc.want)
		}
	}
}

func TestExprPosCRLF(t *testing.T) {
	src := "a: 1\r\nexpr: >\r\n  x &&\r\n  y\r\nq: 'p &&\r\n  q'\r\n"
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	root := doc.Content[0]
	for _, tc := range []struct {
		path      string
		line, col int
		want      Pos
	}{
		{"expr", 1, 6, Pos{"p.yaml", 4, 3}},
		{"q", 1, 6, Pos{"p.yaml", 6, 3}},
	} {
		if got := ExprPos("p.yaml", []byte(src), xposFind(t, root, tc.path), tc.line, tc.col); got != tc.want {
			t.Errorf("ExprPos(%s, %d, %d) = %v, want %v", tc.path, tc.line, tc.col, got, tc.want)
		}
	}
}
