package dsl

import (
	"strings"

	"gopkg.in/yaml.v3"
)

// Interpolate replaces environment references in every scalar value under
// root, in place:
//
//	${NAME}            the value of NAME; an error if NAME is not set
//	${NAME:-default}   the value of NAME, or default if NAME is not set
//	${NAME:-}          the value of NAME, or the empty string
//	$${                a literal "${"
//
// A NAME is a letter or underscore followed by letters, digits and
// underscores. A default is taken literally up to the first "}" and may
// not itself contain "${". Mapping keys are never interpolation, and
// nodes reached only through an alias are interpolation once, where their
// anchor is.
//
// Substitution happens after parsing, on each scalar's value, and
// substituted text is never scanned again: a value containing "${X}",
// a line break or "key: value" stays part of one string and can neither
// inject YAML nor expand further references.
//
// The tag of a plain (unquoted, untagged) scalar is resolved again after
// substitution, as if the result had been written in the file: with N=5,
// "count: ${N}" is an !!int and "on: ${B}" with B=true a !!bool, while an
// empty result becomes !!null. Quote the reference ("${N}") or tag it
// (!!str ${N}) to keep a string.
//
// Inside a flow collection ("[...]" or "{...}") a plain reference is not
// a scalar to YAML at all, since braces delimit flow mappings there: quote
// it, as in ["${A}", "${B}"], or use block style.
//
// lookup is os.LookupEnv in production. Every problem is reported at once:
// each unset variable without a default, each malformed reference ("${"
// without "}", an empty or invalid name), at the position of its "${"
// when it can be computed without the source (single-line scalars but
// for optional escapes in double quotes; see ExprPos) and at its scalar
// otherwise. A
// scalar with a problem is left as it was. No error message contains a
// looked-up value.
//
// fromEnv holds the scalars whose value now contains text from lookup, so
// error messages can avoid echoing secrets; a value that only used its
// defaults is not among them.
func Interpolate(file string, root *yaml.Node, lookup func(string) (string, bool)) (fromEnv map[*yaml.Node]bool, errs Errors) {
	in, errs := interpolate(file, root, lookup)
	return in.fromEnv, errs
}

// envRef is the first well-formed ${NAME} reference of a scalar, and where
// it was.
type envRef struct {
	name string
	pos  Pos
}

// interpolation is what [Interpolate] learns about the scalars it changed.
type interpolation struct {
	// fromEnv marks scalars that took text from the environment.
	fromEnv map[*yaml.Node]bool
	// envText holds, per scalar in fromEnv, the texts taken from the
	// environment, so a kind can hide exactly them when it shows its config
	// (a URL in an error).
	envText map[*yaml.Node][]string
	// refs holds the first reference of each scalar that had one, so
	// expression fields can refuse them.
	refs map[*yaml.Node]envRef
}

// interpolate is Interpolate, also returning what it learnt per scalar.
func interpolate(file string, root *yaml.Node, lookup func(string) (string, bool)) (in interpolation, errs Errors) {
	in = interpolation{map[*yaml.Node]bool{}, map[*yaml.Node][]string{}, map[*yaml.Node]envRef{}}
	seen := map[*yaml.Node]bool{}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n == nil || seen[n] {
			return
		}
		seen[n] = true
		switch n.Kind {
		case yaml.DocumentNode, yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c)
			}
		case yaml.MappingNode:
			for i := 1; i < len(n.Content); i += 2 {
				walk(n.Content[i])
			}
		case yaml.ScalarNode:
			interpScalar(file, n, lookup, in, &errs)
		}
	}
	walk(root)
	return in, errs
}

// interpScalar interpolates one scalar.
func interpScalar(file string, n *yaml.Node, lookup func(string) (string, bool), in interpolation, errs *Errors) {
	s := n.Value
	if !strings.Contains(s, "${") {
		return
	}
	var (
		b     strings.Builder
		texts []string
	)
	used, failed := false, false
	fail := func(at int, format string, args ...any) {
		failed = true
		errs.Add(interpPos(file, n, at), format, args...)
	}
	for i := 0; i < len(s); {
		j := strings.Index(s[i:], "${")
		if j < 0 {
			b.WriteString(s[i:])
			break
		}
		at := i + j
		if at > i && s[at-1] == '$' {
			// "$${" is a literal "${"; keep the text before the escape.
			b.WriteString(s[i : at-1])
			b.WriteString("${")
			i = at + 2
			continue
		}
		b.WriteString(s[i:at])
		end := strings.IndexByte(s[at:], '}')
		if end < 0 {
			fail(at, `unclosed "${" (write "$${" for a literal "${")`)
			break
		}
		ref := s[at : at+end+1]
		i = at + end + 1
		body := ref[2 : len(ref)-1]
		name, def, hasDef := strings.Cut(body, ":-")
		switch {
		case name == "":
			fail(at, "empty variable name in %q", ref)
			continue
		case !interpValidName(name):
			if k := strings.IndexAny(name, ":-?=+"); k > 0 && interpValidName(name[:k]) {
				fail(at, "unsupported reference %q: only ${%s} and ${%s:-default} are supported", ref, name[:k], name[:k])
			} else {
				fail(at, "invalid variable name %q in %q: use letters, digits and underscores, not starting with a digit", name, ref)
			}
			continue
		case strings.Contains(def, "${"):
			fail(at, "nested reference in the default of %q is not supported", s[at:])
			continue
		}
		if _, seen := in.refs[n]; !seen {
			in.refs[n] = envRef{name, interpPos(file, n, at)}
		}
		if v, ok := lookup(name); ok {
			b.WriteString(v)
			used = true
			texts = append(texts, v)
			continue
		}
		if !hasDef {
			fail(at, "environment variable %s is not set (set it, or give a default: ${%s:-value})", name, name)
			continue
		}
		b.WriteString(def)
	}
	if failed {
		return
	}
	n.Value = b.String()
	if used {
		in.fromEnv[n] = true
		in.envText[n] = texts
	}
	if n.Style == 0 {
		n.Tag = ""
		n.Tag = n.ShortTag()
	}
}

// interpValidName reports whether s is a letter or underscore followed
// by letters, digits and underscores.
func interpValidName(s string) bool {
	for i, r := range s {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return s != ""
}

// interpPos is the position of byte offset at in n's value.
func interpPos(file string, n *yaml.Node, at int) Pos {
	before := n.Value[:at]
	line := 1 + strings.Count(before, "\n")
	col := 1 + len([]rune(before[strings.LastIndexByte(before, '\n')+1:]))
	return ExprPos(file, nil, n, line, col)
}
