package dsl

import (
	"bytes"
	"strings"

	"gopkg.in/yaml.v3"
)

// Format re-encodes a pipeline file with two-space indentation, keeping
// its comments, key order, blank lines between entries and flow or block
// style (pipe fmt). Formatting its own output changes nothing. A file
// LoadYAML refuses, or whose top level is not a mapping, gets errors.
func Format(file string, src []byte) ([]byte, error) {
	out, err := formatOnce(file, src)
	// yaml.v3 attaches some comments to a different node once the
	// indentation changed (a comment after an indented last key becomes a
	// foot comment), so one pass is not always a fixed point; a second or
	// third is.
	for range 2 {
		if err != nil {
			return nil, err
		}
		var next []byte
		if next, err = formatOnce(file, out); err == nil && bytes.Equal(next, out) {
			break
		}
		out = next
	}
	return out, err
}

func formatOnce(file string, src []byte) ([]byte, error) {
	root, errs := LoadYAML(file, src)
	if len(errs) > 0 {
		return nil, errs
	}
	if root.Kind != yaml.MappingNode {
		errs.Add(NodePos(file, root), "a pipeline file is a mapping (name:, source:, stages:, ...), not %s", kindName(root))
		return nil, errs
	}
	// Encode with ${...} references protected (see envProtect), so one in
	// a flow mapping keeps its plain style; restore them in the text.
	protected, changed := envProtect(src)
	var doc yaml.Node
	if err := yaml.Unmarshal(protected, &doc); err != nil {
		return nil, err
	}
	spellNulls(&doc, false, false)
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	// yaml.v3 drops blank lines; put back the ones that separated keys or
	// list items.
	var out yaml.Node
	if err := yaml.Unmarshal(b.Bytes(), &out); err != nil {
		return nil, err
	}
	srcLines := bytes.Split(src, []byte("\n"))
	blank := map[int]bool{} // output line (1-based) to put a blank line before
	pairNodes(&doc, &out, func(a, b *yaml.Node) {
		if l := startLine(a); l > 1 && l-2 < len(srcLines) && len(bytes.TrimSpace(srcLines[l-2])) == 0 {
			blank[startLine(b)] = true
		}
	})
	var res bytes.Buffer
	lines := bytes.SplitAfter(b.Bytes(), []byte("\n"))
	for i, l := range lines {
		if blank[i+1] && i > 0 && len(bytes.TrimSpace(lines[i-1])) > 0 {
			res.WriteByte('\n')
		}
		res.Write(l)
	}
	if changed {
		return []byte(envRestored.Replace(res.String())), nil
	}
	return res.Bytes(), nil
}

// spellNulls writes "null" for the empty nulls that yaml.v3 would encode
// as an empty quoted string, changing the value: inside flow collections
// ({a: , b}), with an anchor (&x), and as a mapping key (? x).
func spellNulls(n *yaml.Node, inFlow, key bool) {
	inFlow = inFlow || n.Style&yaml.FlowStyle != 0
	if (key || inFlow || n.Anchor != "") && n.Kind == yaml.ScalarNode && n.Tag == "!!null" && n.Value == "" {
		n.Value = "null"
	}
	for i, c := range n.Content {
		spellNulls(c, inFlow, n.Kind == yaml.MappingNode && i%2 == 0)
	}
}

// startLine is the first line of n, counting its head comment.
func startLine(n *yaml.Node) int {
	if n.HeadComment == "" {
		return n.Line
	}
	return n.Line - strings.Count(n.HeadComment, "\n") - 1
}

// pairNodes calls visit with each mapping key and sequence item of a and
// its counterpart in b, a tree of the same shape.
func pairNodes(a, b *yaml.Node, visit func(a, b *yaml.Node)) {
	if a.Kind != b.Kind || len(a.Content) != len(b.Content) {
		return
	}
	switch a.Kind {
	case yaml.DocumentNode:
		for i := range a.Content {
			pairNodes(a.Content[i], b.Content[i], visit)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(a.Content); i += 2 {
			visit(a.Content[i], b.Content[i])
			pairNodes(a.Content[i+1], b.Content[i+1], visit)
		}
	case yaml.SequenceNode:
		for i := range a.Content {
			visit(a.Content[i], b.Content[i])
			pairNodes(a.Content[i], b.Content[i], visit)
		}
	}
}
