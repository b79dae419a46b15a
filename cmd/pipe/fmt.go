package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/pipe-dsl/pipe/dsl"
)

// cmdFmt prints pipeline files in canonical form, or rewrites them (-w),
// or lists the ones that are not (-l). A file that does not parse is
// reported with its position and makes the exit code 2.
func cmdFmt(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fmt", flag.ContinueOnError)
	fs.SetOutput(stderr)
	write := fs.Bool("w", false, "write the result to the file instead of stdout")
	list := fs.Bool("l", false, "list files whose formatting differs")
	files, err := parseInterspersed(fs, args)
	if err != nil || len(files) == 0 {
		if err == nil {
			fmt.Fprintln(stderr, "usage: pipe fmt [-l] [-w] FILE...")
		}
		return exitConfig
	}
	code := exitOK
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			fmt.Fprintf(stderr, "pipe fmt: %v\n", err)
			code = exitConfig
			continue
		}
		out, err := formatYAML(file, src)
		if err != nil {
			reportConfigError(stderr, file, err)
			code = exitConfig
			continue
		}
		same := bytes.Equal(src, out)
		if *list && !same {
			fmt.Fprintln(stdout, file)
		}
		if *write && !same {
			if err := os.WriteFile(file, out, 0o644); err != nil {
				fmt.Fprintf(stderr, "pipe fmt: %v\n", err)
				code = exitConfig
			}
		}
		if !*list && !*write {
			stdout.Write(out)
		}
	}
	return code
}

// formatYAML re-encodes a YAML document with two-space indentation,
// keeping its comments, key order and flow or block style. Formatting
// its own output changes nothing.
func formatYAML(file string, src []byte) ([]byte, error) {
	if _, errs := dsl.LoadYAML(file, src); len(errs) > 0 {
		return nil, errs
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, err
	}
	spellFlowNulls(&doc, false)
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
	return res.Bytes(), nil
}

// spellFlowNulls writes "null" for the empty nulls inside flow
// collections ({a: , b}) or with an anchor (&x), which yaml.v3 would
// encode as an empty quoted string, changing the value.
func spellFlowNulls(n *yaml.Node, inFlow bool) {
	inFlow = inFlow || n.Style&yaml.FlowStyle != 0
	if (inFlow || n.Anchor != "") && n.Kind == yaml.ScalarNode && n.Tag == "!!null" && n.Value == "" {
		n.Value = "null"
	}
	for _, c := range n.Content {
		spellFlowNulls(c, inFlow)
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
