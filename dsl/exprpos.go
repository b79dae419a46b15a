package dsl

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// ExprPos maps a position inside the value of scalar n (a 1-based line and
// column counted in characters, as the CEL compiler reports them) to the
// position of that character in the YAML file, whatever the scalar's
// style:
//
//	plain:          expr: size(x) > 0
//	single-quoted:  expr: 'x == ''a'''      ('' is one ' in the value)
//	double-quoted:  expr: "x == \"a\""      (escapes are one character)
//	literal block:  expr: |                 (content starts on the next
//	                  size(x) > 0            line, after the indentation)
//	folded block:   expr: >                 (line breaks fold to spaces)
//
// src is the file's contents. ExprPos re-reads the scalar from src and
// lines it up with n.Value character by character, so folded lines,
// escapes, tags and anchors before the value are all accounted for. When
// that is impossible (src is nil, or the value no longer matches the file,
// as after Interpolate substituted part of it), it falls back to
// arithmetic on n's position that is exact for the first line of a plain
// or single-quoted scalar written on one line, and of a double-quoted one
// without optional escapes such as \t; otherwise it returns n's own
// position. A line or column past the end of the value maps to just after
// its last character. An alias maps into the node it names; a nil n gives
// the file as a whole.
func ExprPos(file string, src []byte, n *yaml.Node, line, col int) Pos {
	if n == nil {
		return Pos{File: file}
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	line, col = max(line, 1), max(col, 1)
	value := []rune(n.Value)
	target := xposIndex(value, line, col)
	if src != nil && n.Kind == yaml.ScalarNode && n.Line > 0 {
		if p, ok := xposAlign(src, n, value, target); ok {
			p.File = file
			return p
		}
	}
	p := NodePos(file, n)
	switch {
	case n.Kind != yaml.ScalarNode || n.Line == 0 || line > 1:
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
	case n.Style&yaml.SingleQuotedStyle != 0:
		// Past the opening quote; each ' before col was written ''.
		p.Col += col + xposCount(value[:target], "'")
	case n.Style&yaml.DoubleQuotedStyle != 0:
		// Past the opening quote; each " or \ before col was escaped (other
		// escapes are optional, so cannot be counted without src).
		p.Col += col + xposCount(value[:target], `"\`)
	default:
		p.Col += col - 1
	}
	return p
}

// xposCount counts the runes of s that are in chars.
func xposCount(s []rune, chars string) int {
	n := 0
	for _, r := range s {
		if strings.ContainsRune(chars, r) {
			n++
		}
	}
	return n
}

// xposIndex returns the index in value of the character at the 1-based
// line and col, clamped to the end of that line, or of value.
func xposIndex(value []rune, line, col int) int {
	l, c := 1, 1
	for i, r := range value {
		if l == line && (c == col || r == '\n') {
			return i
		}
		if r == '\n' {
			l, c = l+1, 1
		} else {
			c++
		}
	}
	return len(value)
}

// xposCursor walks src keeping the position of byte offset i.
type xposCursor struct {
	src       []byte
	i         int
	line, col int
}

func (c *xposCursor) peek() (rune, int) {
	if c.i >= len(c.src) {
		return utf8.RuneError, 0
	}
	return utf8.DecodeRune(c.src[c.i:])
}

func (c *xposCursor) next() {
	r, size := c.peek()
	if size == 0 {
		return
	}
	c.i += size
	// "\r\n" is one line break: count it at the '\n'.
	if xposIsBreak(r) && (r != '\r' || c.i >= len(c.src) || c.src[c.i] != '\n') {
		c.line, c.col = c.line+1, 1
	} else {
		c.col++
	}
}

func (c *xposCursor) pos() Pos { return Pos{Line: c.line, Col: c.col} }

// xposIsBreak reports whether r breaks a line, as yaml.v3 counts lines.
func xposIsBreak(r rune) bool {
	return r == '\n' || r == '\r' || r == 0x85 || r == 0x2028 || r == 0x2029
}

// xposIsAnchorChar reports whether r may be part of an anchor's name, for
// yaml.v3.
func xposIsAnchorChar(r rune) bool {
	return r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_' || r == '-'
}

// xposIsSpace reports whether r is a blank or a line break.
func xposIsSpace(r rune) bool { return r == ' ' || r == '\t' || xposIsBreak(r) }

// xposStart returns a cursor at the start of src, past any byte order
// mark (yaml.v3 does not count it as a column).
func xposStart(src []byte) *xposCursor {
	c := &xposCursor{src: src, line: 1, col: 1}
	if bytes.HasPrefix(src, xposBOM) {
		c.i = len(xposBOM)
	}
	return c
}

// xposAt returns the line and column of byte offset off in src.
func xposAt(src []byte, off int) Pos {
	c := xposStart(src)
	for c.i < off && c.i < len(src) {
		c.next()
	}
	return c.pos()
}

// xposAlign finds the file position of value[target] by reading scalar n
// from src alongside its value.
func xposAlign(src []byte, n *yaml.Node, value []rune, target int) (Pos, bool) {
	c := xposStart(src)
	for c.line < n.Line {
		if c.i >= len(src) {
			return Pos{}, false
		}
		c.next()
	}
	for c.col < n.Column {
		if r, size := c.peek(); size == 0 || xposIsBreak(r) {
			return Pos{}, false
		}
		c.next()
	}
	// Skip a tag or anchor before the value, "!!str x" or "&a x", and
	// any comment after it.
	for {
		r, _ := c.peek()
		if r != '!' && r != '&' {
			break
		}
		anchor := r == '&'
		for c.next(); ; c.next() {
			r, size := c.peek()
			if size == 0 || xposIsSpace(r) || anchor && !xposIsAnchorChar(r) {
				break
			}
		}
		for r, size := c.peek(); size > 0 && (xposIsSpace(r) || r == '#'); r, size = c.peek() {
			if r == '#' { // a comment runs to the end of the line
				for r, size := c.peek(); size > 0 && !xposIsBreak(r); r, size = c.peek() {
					c.next()
				}
				continue
			}
			c.next()
		}
	}
	style := n.Style &^ (yaml.TaggedStyle | yaml.FlowStyle)
	indent := -1 // for block scalars: spaces before each content line
	switch style {
	case yaml.SingleQuotedStyle, yaml.DoubleQuotedStyle:
		c.next()
	case yaml.LiteralStyle, yaml.FoldedStyle:
		for line := c.line; c.line == line; c.next() {
			if c.i >= len(src) {
				return Pos{}, false
			}
		}
		indent = xposBlockIndent(src[c.i:], value)
	}
	atLineStart := true
	var last Pos
	for k := 0; k <= target; k++ {
		if k == len(value) {
			if k == 0 {
				return c.pos(), true
			}
			last.Col++
			return last, true
		}
		v := value[k]
		for {
			if atLineStart && indent > 0 {
				for s := 0; s < indent; s++ {
					if r, _ := c.peek(); r != ' ' {
						break
					}
					c.next()
				}
			}
			atLineStart = false
			r, size := c.peek()
			if size == 0 {
				return Pos{}, false
			}
			if style == yaml.DoubleQuotedStyle && r == '\\' {
				at := c.pos()
				e, elen, isBreak := xposEscape(src[c.i:])
				if elen == 0 {
					return Pos{}, false
				}
				for end := c.i + elen; c.i < end; {
					c.next()
				}
				if isBreak {
					continue
				}
				if e != v {
					return Pos{}, false
				}
				last = at
				break
			}
			if style == yaml.SingleQuotedStyle && r == '\'' {
				if v != '\'' || c.i+1 >= len(src) || src[c.i+1] != '\'' {
					return Pos{}, false
				}
				last = c.pos()
				c.next()
				c.next()
				break
			}
			if style == yaml.DoubleQuotedStyle && r == '"' {
				return Pos{}, false
			}
			// A line break folds into a space in every style but literal.
			if r == v || (v == '\n' && xposIsBreak(r)) || (v == ' ' && xposIsBreak(r) && style != yaml.LiteralStyle) {
				last = c.pos()
				line := c.line
				c.next()
				atLineStart = c.line != line
				break
			}
			if !xposIsSpace(r) {
				return Pos{}, false
			}
			line := c.line
			c.next()
			atLineStart = c.line != line
		}
	}
	return last, true
}

// xposBOM is the UTF-8 byte order mark.
var xposBOM = []byte("\uFEFF")

// xposBlockIndent returns the indentation of a block scalar's content,
// which starts at body: the leading spaces of its first non-blank line
// less those that line keeps in the value (an explicit indentation
// indicator can leave some).
func xposBlockIndent(body []byte, value []rune) int {
	srcLead := -1
	for _, line := range errLines(string(body)) {
		if t := strings.TrimLeft(line, " "); t != "" {
			srcLead = len(line) - len(t)
			break
		}
	}
	if srcLead < 0 {
		return 0
	}
	k := 0
	for k < len(value) && value[k] == '\n' {
		k++
	}
	valLead := 0
	for k+valLead < len(value) && value[k+valLead] == ' ' {
		valLead++
	}
	return max(srcLead-valLead, 0)
}

// xposEscapes are the one-character escapes of double-quoted scalars.
var xposEscapes = map[byte]rune{
	'0': 0, 'a': '\a', 'b': '\b', 't': '\t', '\t': '\t', 'n': '\n',
	'v': '\v', 'f': '\f', 'r': '\r', 'e': 0x1b, ' ': ' ', '"': '"',
	'/': '/', '\\': '\\', 'N': 0x85, '_': 0xa0, 'L': 0x2028, 'P': 0x2029,
}

// xposEscape decodes the double-quoted escape sequence at the start of b
// (which begins with a backslash). It returns the character, the escape's
// length in bytes and whether it is an escaped line break, which stands
// for nothing. A length of 0 means b holds no valid escape.
func xposEscape(b []byte) (r rune, n int, isBreak bool) {
	if len(b) < 2 {
		return 0, 0, false
	}
	if r, ok := xposEscapes[b[1]]; ok {
		return r, 2, false
	}
	switch b[1] {
	case '\n':
		return 0, 2, true
	case '\r':
		if len(b) > 2 && b[2] == '\n' {
			return 0, 3, true
		}
		return 0, 2, true
	}
	digits := map[byte]int{'x': 2, 'u': 4, 'U': 8}[b[1]]
	if digits == 0 || len(b) < 2+digits {
		return 0, 0, false
	}
	x, err := strconv.ParseUint(string(b[2:2+digits]), 16, 32)
	if err != nil {
		return 0, 0, false
	}
	return rune(x), 2 + digits, false
}
