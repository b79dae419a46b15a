package dsl

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Pos is a 1-based position in a pipeline file. Col counts characters
// (runes), not bytes, as yaml.v3 and CEL do. A zero Line means the position
// is the file as a whole; a zero Col means the line as a whole.
type Pos struct {
	File      string
	Line, Col int
}

// String formats p as "file:line:col", leaving out the parts that are zero
// or empty: "file:line", "file", "line:col".
func (p Pos) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		if p.File != "" {
			b.WriteByte(':')
		}
		b.WriteString(strconv.Itoa(p.Line))
		if p.Col > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(p.Col))
		}
	}
	return b.String()
}

// NodePos is where n starts in file. A nil n gives the file as a whole.
func NodePos(file string, n *yaml.Node) Pos {
	if n == nil {
		return Pos{File: file}
	}
	return Pos{File: file, Line: n.Line, Col: n.Column}
}

// Error is one problem in a pipeline file.
type Error struct {
	Pos Pos
	Msg string
}

// Error formats e as "file:line:col: msg".
func (e *Error) Error() string {
	if p := e.Pos.String(); p != "" {
		return p + ": " + e.Msg
	}
	return e.Msg
}

// Errors collects every problem found in one or more pipeline files, so a
// user sees all of them in one run, like a compiler's diagnostics. The zero
// value is an empty list ready for Add. Errors is not safe for concurrent
// use.
//
// Error, Err and Render present the errors sorted by file, line and column
// (errors at the same position keep the order they were added in), with
// exact duplicates (same position and message) removed.
type Errors []*Error

// Error returns one "file:line:col: msg" line per error, joined by "\n".
// Use Render to show the offending source lines too.
func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es.errSorted() {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Add appends an error at pos with a message formatted as by fmt.Sprintf.
func (es *Errors) Add(pos Pos, format string, args ...any) {
	*es = append(*es, &Error{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

// Err returns nil if es is empty, and otherwise es sorted and without
// duplicates, as an error. Return es.Err() rather than es itself, so an
// empty list never becomes a non-nil error.
func (es Errors) Err() error {
	if len(es) == 0 {
		return nil
	}
	return es.errSorted()
}

// errSorted returns a sorted copy of es without nil entries and duplicates.
func (es Errors) errSorted() Errors {
	out := make(Errors, 0, len(es))
	for _, e := range es {
		if e != nil {
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out, func(a, b *Error) int {
		return cmp.Or(
			cmp.Compare(a.Pos.File, b.Pos.File),
			cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Col, b.Pos.Col),
		)
	})
	// Duplicates are adjacent except for interleaved different messages at
	// the same position, so compare within each run of equal positions.
	seen := map[Error]bool{}
	w := 0
	for i, e := range out {
		if i > 0 && out[i-1].Pos != e.Pos {
			clear(seen)
		}
		if seen[*e] {
			continue
		}
		seen[*e] = true
		out[w] = e
		w++
	}
	return out[:w]
}

// errTabWidth is how many columns a tab advances to when Render shows a
// source line; the caret line is computed with the same expansion.
const errTabWidth = 4

// errMaxShown is the widest source excerpt Render prints; longer lines are
// cut around the caret.
const errMaxShown = 100

// Render writes every error the way a compiler does:
//
//	pipeline.yaml:4:5: unknown key "inptus"; did you mean "inputs"?
//	 |     inptus: [parse]
//	 |     ^
//
// src maps a file name to its contents; an error whose file is missing
// from src, or that has no line, is written as its first line only. Tabs in
// the source line are expanded to the next multiple of 4 columns, control
// characters are shown as U+FFFD so a hostile file cannot drive the
// terminal, and lines wider than 100 columns are cut around the caret.
// Render stops at the first write error.
func (es Errors) Render(w io.Writer, src map[string][]byte) {
	lines := map[string][]string{}
	var b strings.Builder
	for _, e := range es.errSorted() {
		b.Reset()
		b.WriteString(e.Error())
		b.WriteByte('\n')
		text, ok := src[e.Pos.File]
		if ok && e.Pos.Line > 0 {
			ls, split := lines[e.Pos.File]
			if !split {
				ls = errLines(string(text))
				lines[e.Pos.File] = ls
			}
			if e.Pos.Line <= len(ls) {
				shown, caret := errExcerpt(ls[e.Pos.Line-1], e.Pos.Col)
				b.WriteString(" | ")
				b.WriteString(shown)
				b.WriteByte('\n')
				if caret >= 0 {
					b.WriteString(" | ")
					b.WriteString(strings.Repeat(" ", caret))
					b.WriteString("^\n")
				}
			}
		}
		if _, err := io.WriteString(w, b.String()); err != nil {
			return
		}
	}
}

// errLines splits a file into lines the way yaml.v3 counts them: at
// "\r\n", "\n", "\r", NEL, LS and PS, after dropping a byte order mark.
func errLines(text string) []string {
	text = strings.TrimPrefix(text, "\uFEFF")
	var lines []string
	start := 0
	for i, r := range text {
		switch r {
		case '\r':
			if i+1 < len(text) && text[i+1] == '\n' {
				continue // break at the '\n'
			}
			fallthrough
		case '\n', 0x85, 0x2028, 0x2029:
			lines = append(lines, strings.TrimSuffix(text[start:i], "\r"))
			start = i + utf8.RuneLen(r)
		}
	}
	return append(lines, text[start:])
}

// errExcerpt returns line ready to print (tabs expanded, control
// characters replaced, cut to errMaxShown columns) and the number of
// columns before the caret for the 1-based character column col, or -1
// when col is not positive. A col past the end of the line puts the caret
// just after the last character.
func errExcerpt(line string, col int) (shown string, caret int) {
	if !utf8.ValidString(line) {
		// Binary data: echoing it could drive the terminal.
		return "(binary data, not shown)", -1
	}
	cells := make([]string, 0, len(line)) // one entry per display column
	caret = -1
	i := 0
	for _, r := range line {
		i++
		if i == col {
			caret = len(cells)
		}
		switch {
		case r == '\t':
			n := errTabWidth - len(cells)%errTabWidth
			for range n {
				cells = append(cells, " ")
			}
		case unicode.IsControl(r):
			// Escaped, one cell per character shown, so the caret lines up.
			for _, c := range fmt.Sprintf("\\x%02x", r) {
				cells = append(cells, string(c))
			}
		default:
			cells = append(cells, string(r))
		}
	}
	if col > i {
		caret = len(cells) // past the end: just after the last character
	}
	start, end := 0, len(cells)
	if end > errMaxShown {
		// Keep the caret about a third of the way into the excerpt.
		c := max(caret, 0)
		start = max(0, c-errMaxShown/3)
		end = min(len(cells), start+errMaxShown)
		start = max(0, end-errMaxShown)
	}
	var b strings.Builder
	if start > 0 {
		b.WriteString("...")
	}
	for _, c := range cells[start:end] {
		b.WriteString(c)
	}
	if end < len(cells) {
		b.WriteString("...")
	}
	if caret >= 0 {
		caret -= start
		if start > 0 {
			caret += len("...")
		}
	}
	return b.String(), caret
}
