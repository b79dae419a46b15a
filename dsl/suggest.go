package dsl

import (
	"strings"
	"unicode/utf8"

	"github.com/pipe-dsl/pipe/internal/editdist"
)

// Suggest returns the candidate closest to word, for "did you mean"
// messages, or "" if none is close enough.
//
// Closeness is the Damerau-Levenshtein distance (optimal string alignment:
// insertions, deletions, substitutions and swaps of adjacent characters)
// between the lower-cased strings; a candidate qualifies when the distance
// is at most max(1, len(word)/3) characters, and at most 1 unless both
// start with the same letter. Among equally close
// candidates, the one closest to word with case counted wins ("Ki"
// suggests "KiB" over "kB"), then the earlier one. A candidate equal to word is never suggested, but one that
// differs only in case is ("Inputs" suggests "inputs").
func Suggest(word string, candidates []string) string {
	if word == "" {
		return ""
	}
	w := []rune(strings.ToLower(word))
	limit := max(1, len(w)/3)
	best, bestDist, bestExact := "", limit+1, 0
	for _, c := range candidates {
		if c == word || c == "" {
			continue
		}
		// Lengths alone bound the distance from below.
		if d := utf8.RuneCountInString(c) - len(w); d > limit || -d > limit {
			continue
		}
		lc := []rune(strings.ToLower(c))
		d := editdist.Runes(w, lc)
		// Two or more edits suggest only a word that starts the same:
		// "retries" is not "metrics".
		if d > bestDist || d > 1 && lc[0] != w[0] {
			continue
		}
		exact := editdist.Runes([]rune(word), []rune(c))
		if d < bestDist || exact < bestExact {
			best, bestDist, bestExact = c, d, exact
		}
	}
	return best
}
