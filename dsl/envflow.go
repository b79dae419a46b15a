package dsl

import (
	"bytes"
	"strings"

	"gopkg.in/yaml.v3"
)

// In a flow mapping or sequence ({count: ${COUNT:-3}}), YAML reads the
// braces of ${...} as its own indicators. Before parsing, envProtect
// replaces the characters of each ${...} reference that YAML treats as
// flow indicators (and ':', which the encoder quotes in a flow
// collection) by private-use runes, one rune for one, so every line
// and column stays where it was; envRestore puts them back in every
// scalar after parsing, and Interpolate sees the reference as written.

var envProtected = strings.NewReplacer("{", "\uE000", "}", "\uE001", ",", "\uE002", "[", "\uE003", "]", "\uE004", ":", "\uE005")

var envRestored = strings.NewReplacer("\uE000", "{", "\uE001", "}", "\uE002", ",", "\uE003", "[", "\uE004", "]", "\uE005", ":")

// envProtect returns src with the flow indicators inside each one-line
// ${...} reference replaced, and whether it replaced any. A file that
// already holds one of the private-use runes is returned as it is.
func envProtect(src []byte) ([]byte, bool) {
	if !bytes.Contains(src, []byte("${")) || bytes.ContainsAny(src, "\uE000\uE001\uE002\uE003\uE004\uE005") {
		return src, false
	}
	var out bytes.Buffer
	out.Grow(len(src) + 64)
	changed := false
	for {
		i := bytes.Index(src, []byte("${"))
		if i < 0 {
			out.Write(src)
			return out.Bytes(), changed
		}
		end := envRefEnd(src[i:])
		if end < 0 {
			out.Write(src[:i+2])
			src = src[i+2:]
			continue
		}
		out.Write(src[:i+1]) // up to and including '$'
		out.WriteString(envProtected.Replace(string(src[i+1 : i+end])))
		src = src[i+end:]
		changed = true
	}
}

// envRefEnd returns the length of the ${...} reference ref starts with,
// nested references included, or -1 if it does not close on its line.
func envRefEnd(ref []byte) int {
	depth := 0
	for j := 1; j < len(ref); j++ {
		switch ref[j] {
		case '{':
			depth++
		case '}':
			if depth--; depth == 0 {
				return j + 1
			}
		case '\n', '\r':
			return -1
		}
	}
	return -1
}

// envRestore undoes envProtect in every scalar, key and comment under n.
func envRestore(n *yaml.Node) {
	if n == nil {
		return
	}
	n.Value = envRestored.Replace(n.Value)
	n.HeadComment = envRestored.Replace(n.HeadComment)
	n.LineComment = envRestored.Replace(n.LineComment)
	n.FootComment = envRestored.Replace(n.FootComment)
	for _, c := range n.Content {
		envRestore(c)
	}
}
