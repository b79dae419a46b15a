package dsl

import (
	"fmt"
	"testing"
)

func TestSuggest(t *testing.T) {
	keys := []string{"name", "version", "source", "sources", "stages", "sink", "sinks", "inputs", "dead_letter", "buffer", "drain_timeout"}
	for _, tc := range []struct {
		word       string
		candidates []string
		want       string
	}{
		{"inptus", keys, "inputs"}, // swap counts as one edit
		{"inpts", keys, "inputs"},  // deletion
		{"Inputs", keys, "inputs"}, // case only
		{"stage", keys, "stages"},  // insertion
		{"sorce", keys, "source"},  // first of equally close candidates
		{"snk", keys, "sink"},      // short word: one edit allowed
		{"drain_timout", keys, "drain_timeout"},
		{"deadletter", keys, "dead_letter"},
		{"bufer", keys, "buffer"},
		{"xyz", keys, ""},    // nothing close
		{"stgs", keys, ""},   // two edits on a 4-letter word
		{"inputs", keys, ""}, // an exact match is not a suggestion
		{"", keys, ""},
		{"kafka", nil, ""},
		{"kafak", []string{"kafka", "nats"}, "kafka"},
		{"fltr", []string{"filter", "map"}, ""}, // 2 edits, limit 1
		{"filtre", []string{"filter", "map"}, "filter"},
		{"ünïcode", []string{"unicode", "ünïcode2"}, "ünïcode2"},
	} {
		if got := Suggest(tc.word, tc.candidates); got != tc.want {
			t.Errorf("Suggest(%q, %q) = %q, want %q", tc.word, tc.candidates, got, tc.want)
		}
	}
}

func BenchmarkSuggest(b *testing.B) {
	keys := []string{"name", "version", "source", "sources", "stages", "sink", "sinks", "inputs", "dead_letter", "buffer", "drain_timeout"}
	for b.Loop() {
		Suggest("drain_timout", keys)
	}
}

func ExampleSuggest() {
	keys := []string{"source", "stages", "sink", "inputs"}
	fmt.Printf("%q %q\n", Suggest("inptus", keys), Suggest("outputs", keys))
	// Output: "inputs" ""
}
