package dsl

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// MaxDocumentSize is the largest pipeline file LoadYAML parses, in bytes.
var MaxDocumentSize = 1 << 20

const (
	// srcMaxDepth is how deeply mappings and sequences may nest, counting
	// what aliases expand to. Pipelines need about ten levels; yaml.v3
	// itself allows 10,000.
	srcMaxDepth = 100
	// srcMaxNodes is how many nodes the document may expand to once every
	// alias is replaced by what it names. yaml.v3 does not limit this when
	// parsing into a yaml.Node: its alias check runs only when decoding
	// into Go values, so a "billion laughs" document parses in
	// microseconds and explodes only in whoever walks it.
	srcMaxNodes = 1_000_000
)

// LoadYAML parses src, the contents of the pipeline file named file, and
// returns the content of its single document, normally a mapping (Parse
// reports other kinds). errs is non-empty exactly when the node is nil.
//
// LoadYAML is safe on hostile input: it rejects files larger than
// MaxDocumentSize before parsing, documents nesting deeper than 100
// levels, and documents whose aliases would expand to more than a million
// nodes ("billion laughs") or refer to themselves. yaml.v3's syntax
// errors become positioned errors: the line is the one yaml.v3 names
// (corrected for its off-by-one on parser errors), the column 1 unless the
// problem can be found on that line. An empty file and a file with more
// than one document are errors, and so is a UTF-16 file.
func LoadYAML(file string, src []byte) (*yaml.Node, Errors) {
	var errs Errors
	if len(src) > MaxDocumentSize {
		errs.Add(Pos{File: file, Line: 1, Col: 1}, "pipeline file is too large: %d bytes (the limit is %d)", len(src), MaxDocumentSize)
		return nil, errs
	}
	if bytes.HasPrefix(src, []byte{0xff, 0xfe}) || bytes.HasPrefix(src, []byte{0xfe, 0xff}) {
		// yaml.v3 would decode UTF-16, but positions here count UTF-8.
		errs.Add(Pos{File: file, Line: 1, Col: 1}, "pipeline file is UTF-16; save it as UTF-8")
		return nil, errs
	}
	parsed, protected := envProtect(src)
	dec := yaml.NewDecoder(bytes.NewReader(parsed))
	var doc yaml.Node
	if err := srcDecode(dec, &doc); err != nil {
		if errors.Is(err, io.EOF) {
			errs.Add(Pos{File: file, Line: 1, Col: 1}, "empty pipeline")
		} else {
			errs = append(errs, srcSyntaxError(file, src, err))
		}
		return nil, errs
	}
	var extra yaml.Node
	switch err := srcDecode(dec, &extra); {
	case err == nil:
		errs.Add(NodePos(file, &extra), "a pipeline file holds one YAML document; remove this second one (or the \"---\" before it)")
	case !errors.Is(err, io.EOF):
		errs = append(errs, srcSyntaxError(file, src, err))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if len(doc.Content) == 0 {
		errs.Add(Pos{File: file, Line: 1, Col: 1}, "empty pipeline")
		return nil, errs
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" && root.Value == "" {
		errs.Add(NodePos(file, root), "empty pipeline")
		return nil, errs
	}
	if e := srcCheckExpansion(file, root); e != nil {
		errs = append(errs, e)
		return nil, errs
	}
	if protected {
		envRestore(&doc)
	}
	return root, nil
}

// srcDecode is dec.Decode turning a panic inside yaml.v3 into an error.
func srcDecode(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: internal error parsing the document: %v", r)
		}
	}()
	return dec.Decode(n)
}

// srcLineRE matches yaml.v3's positioned messages.
var srcLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// srcParserProblems are the messages of yaml.v3's parser (as opposed to
// its scanner), whose line numbers are 0-based: yaml.v3 forgets to add one
// to them.
var srcParserProblems = []string{
	"did not find expected",
	"found duplicate %",
	"found incompatible YAML document",
	"found undefined tag handle",
}

// srcSyntaxError turns an error from yaml.v3 into a positioned Error.
func srcSyntaxError(file string, src []byte, err error) *Error {
	msg := err.Error()
	pos := Pos{File: file, Line: 1, Col: 1}
	if m := srcLineRE.FindStringSubmatch(msg); m != nil {
		pos.Line, _ = strconv.Atoi(m[1])
		msg = m[2]
		for _, p := range srcParserProblems {
			if strings.HasPrefix(msg, p) {
				pos.Line++
				break
			}
		}
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
		if name, ok := strings.CutPrefix(msg, "unknown anchor '"); ok {
			name = strings.TrimSuffix(name, "' referenced")
			if p, ok := srcFind(src, "*"+name); ok {
				pos = p
			}
			msg = fmt.Sprintf("unknown anchor %q (define it first with &%s)", name, name)
		} else if name, ok := strings.CutPrefix(msg, "anchor '"); ok {
			// "anchor 'x' value contains itself"
			name, _, _ = strings.Cut(name, "'")
			if p, ok := srcFind(src, "*"+name); ok {
				pos = p
			}
		}
	}
	lines := errLines(string(src))
	if pos.Line > len(lines) {
		pos.Line = len(lines)
	}
	if strings.Contains(msg, "tab character") {
		// yaml.v3 names the line where the scalar before the tab started.
		for l := pos.Line; l >= 1 && l <= len(lines); l++ {
			if k := strings.IndexByte(lines[l-1], '\t'); k >= 0 {
				pos.Line, pos.Col = l, 1+len([]rune(lines[l-1][:k]))
				break
			}
		}
	}
	if pos.Line >= 1 && pos.Line <= len(lines) {
		line := lines[pos.Line-1]
		indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
		if k := strings.IndexByte(indent, '\t'); k >= 0 && !strings.Contains(msg, "tab") {
			pos.Col = 1 + k
			msg += " (a tab in the indentation: YAML indents with spaces only)"
		}
	}
	if strings.Contains(msg, "invalid leading UTF-8 octet") || strings.Contains(msg, "invalid trail") {
		msg += " (the file is not UTF-8 text; is it binary?)"
	}
	pos.File = file
	return &Error{Pos: pos, Msg: "invalid YAML: " + msg}
}

// srcFind returns the position of the first occurrence of token in src
// not followed by a character that could continue it.
func srcFind(src []byte, token string) (Pos, bool) {
	for off := 0; ; {
		i := bytes.Index(src[off:], []byte(token))
		if i < 0 {
			return Pos{}, false
		}
		i += off
		end := i + len(token)
		if end == len(src) || bytes.IndexByte([]byte(" \t\r\n,]}"), src[end]) >= 0 {
			return xposAt(src, i), true
		}
		off = end
	}
}

// srcCheckExpansion walks root as a consumer following aliases would,
// without doing so: each node's expanded size and height are computed
// once. It reports the first node where the expanded document grows
// deeper than srcMaxDepth or larger than srcMaxNodes, or an alias to one
// of its own ancestors.
func srcCheckExpansion(file string, root *yaml.Node) *Error {
	type info struct{ size, height int }
	done := map[*yaml.Node]info{}
	onPath := map[*yaml.Node]bool{}
	var fail *Error
	var visit func(n *yaml.Node, depth int) info
	visit = func(n *yaml.Node, depth int) info {
		if fail != nil || n == nil {
			return info{}
		}
		if depth > srcMaxDepth {
			fail = &Error{Pos: NodePos(file, n), Msg: fmt.Sprintf("document nests deeper than %d levels", srcMaxDepth)}
			return info{}
		}
		if n.Kind == yaml.AliasNode {
			if onPath[n.Alias] {
				fail = &Error{Pos: NodePos(file, n), Msg: "alias refers to a node that contains it"}
				return info{}
			}
			t, ok := done[n.Alias]
			if !ok {
				t = visit(n.Alias, depth)
			}
			if depth+t.height > srcMaxDepth && fail == nil {
				fail = &Error{Pos: NodePos(file, n), Msg: fmt.Sprintf("document nests deeper than %d levels once aliases are expanded", srcMaxDepth)}
			}
			return info{size: 1 + t.size, height: t.height}
		}
		if in, ok := done[n]; ok {
			return in // only if a tree shares nodes without aliases
		}
		onPath[n] = true
		in := info{size: 1}
		for _, c := range n.Content {
			t := visit(c, depth+1)
			in.size += t.size
			in.height = max(in.height, t.height+1)
			if in.size > srcMaxNodes && fail == nil {
				fail = &Error{Pos: NodePos(file, c), Msg: fmt.Sprintf("aliases expand the document to more than %d nodes", srcMaxNodes)}
			}
		}
		delete(onPath, n)
		done[n] = in
		return in
	}
	visit(root, 1)
	return fail
}
