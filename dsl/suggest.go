package dsl

import (
	"strings"
	"unicode/utf8"
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
		d := sugDistance(w, lc)
		// Two or more edits suggest only a word that starts the same:
		// "retries" is not "metrics".
		if d > bestDist || d > 1 && lc[0] != w[0] {
			continue
		}
		exact := sugDistance([]rune(word), []rune(c))
		if d < bestDist || exact < bestExact {
			best, bestDist, bestExact = c, d, exact
		}
	}
	return best
}

// sugDistance is the optimal-string-alignment distance between a and b.
func sugDistance(a, b []rune) int {
	// Three rolling rows: two back (for swaps), previous, current.
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
