package expr

import (
	"regexp"
	"strings"
)

// undeclared matches cel-go's message for an unknown identifier.
var undeclared = regexp.MustCompile(`^undeclared reference to '([^']+)' \(in container ''\)$`)

// hintUndeclared drops the empty container from cel-go's message for an
// undeclared reference x, and adds "did you mean" when a declared variable
// is close to x.
func hintUndeclared(msg string, vars []string) string {
	m := undeclared.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	out := "undeclared reference to '" + m[1] + "'"
	if s := nearestVariable(m[1], vars); s != "" {
		out += "; did you mean '" + s + "'?"
	}
	return out
}

// declaredVars are the variables of every expression, with extra.
func declaredVars(extra []string) []string {
	return append([]string{varMsg, varMeta, varRaw, varSeq, varEnv}, extra...)
}

// nearestVariable returns the variable of vars that name most likely
// meant, or "": one within max(1, len(name)/3) edits (insertions,
// deletions, substitutions, adjacent swaps), or one that name abbreviates
// or spells out, with the same first letter (message -> msg, metadata ->
// meta). Only close names are suggested: "foo" suggests nothing.
//
// dsl.Suggest does the first half for keys; expr cannot import dsl, and
// abbreviations are a habit of variable names, not of keys.
func nearestVariable(name string, vars []string) string {
	lower := strings.ToLower(name)
	best, bestDist := "", max(1, len(lower)/3)+1
	for _, v := range vars {
		if v == name {
			continue
		}
		if d := editDistance(lower, v); d < bestDist {
			best, bestDist = v, d
		}
	}
	if best != "" {
		return best
	}
	for _, v := range vars {
		if len(v) > 1 && lower[0] == v[0] && (subsequence(v, lower) || subsequence(lower, v)) {
			return v
		}
	}
	return ""
}

// subsequence reports whether every byte of short appears in long, in order.
func subsequence(short, long string) bool {
	i := 0
	for j := 0; i < len(short) && j < len(long); j++ {
		if short[i] == long[j] {
			i++
		}
	}
	return i == len(short)
}

// editDistance is the optimal-string-alignment distance between a and b
// (bytes: variable names are ASCII).
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
