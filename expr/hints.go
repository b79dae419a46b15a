package expr

import (
	"regexp"
	"strings"

	"github.com/pipe-dsl/pipe/internal/editdist"
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
		if d := editdist.Runes([]rune(lower), []rune(v)); d < bestDist {
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
