package pipetest

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/pipe-dsl/pipe/pipeline"
)

// check reports, through failf, each expectation of c that the finished
// run does not meet.
func (h *harness) check(c *Case, p *pipeline.Pipeline, failf func(string, ...any)) {
	e := c.Expect
	for _, sink := range sortedKeys(e.Sinks) {
		r := h.sinks[sink]
		if r == nil {
			failf("expect.sinks: no sink %q", sink)
			continue
		}
		got := r.bodies()
		want := e.Sinks[sink]
		eq := func(i, j int) bool { return bodyMatches(got[j], want[i]) }
		if len(got) == len(want) && !slices.ContainsFunc(indices(want), func(i int) bool { return !eq(i, i) }) {
			continue
		}
		wantText := make([]string, len(want))
		for i, w := range want {
			wantText[i] = show(w)
		}
		gotText := make([]string, len(got))
		for j, g := range got {
			gotText[j] = string(g)
		}
		failf("sink %q got %d messages, want %d (-want +got):\n%s", sink, len(got), len(want), diff(wantText, gotText, eq))
	}
	for _, sink := range sortedKeys(e.Counts) {
		r := h.sinks[sink]
		if r == nil {
			failf("expect.counts: no sink %q", sink)
			continue
		}
		if n := len(r.bodies()); n != e.Counts[sink] {
			failf("sink %q wrote %d messages, want %d", sink, n, e.Counts[sink])
		}
	}
	if e.DeadLetters != nil {
		var got [][]byte
		if h.dlq != nil {
			got = h.dlq.bodies()
		}
		if len(got) != len(e.DeadLetters) {
			failf("got %d dead letters, want %d:\n%s", len(got), len(e.DeadLetters), indent(got))
		} else {
			for i, want := range e.DeadLetters {
				var env map[string]any
				if err := json.Unmarshal(got[i], &env); err != nil {
					failf("dead letter %d is not JSON: %s", i+1, got[i])
					continue
				}
				for k, wv := range want {
					nv, _ := normalize(wv)
					if !reflect.DeepEqual(env[k], nv) {
						failf("dead letter %d: %s = %s, want %s\n    envelope: %s", i+1, k, show(env[k]), show(nv), got[i])
					}
				}
			}
		}
	}
	stats := map[string]pipeline.NodeStats{}
	for _, s := range p.Stats() {
		stats[s.Name] = s
	}
	for _, node := range sortedKeys(e.Dropped) {
		s, ok := stats[node]
		if !ok {
			failf("expect.dropped: no node %q", node)
			continue
		}
		if s.Dropped != e.Dropped[node] {
			failf("node %q dropped %d, want %d", node, s.Dropped, e.Dropped[node])
		}
	}
	h.mu.Lock()
	acked, nacked := h.acked, h.nacked
	h.mu.Unlock()
	if e.Acked != nil && acked != *e.Acked {
		failf("acked %d source messages, want %d", acked, *e.Acked)
	}
	if e.Nacked != nil && nacked != *e.Nacked {
		failf("nacked %d source messages, want %d", nacked, *e.Nacked)
	}
	for _, node := range sortedKeys(e.Breakers) {
		if _, ok := stats[node]; !ok && (h.dlq == nil || node != h.dlqName) {
			failf("expect.breakers: no node %q", node)
			continue
		}
		got, want := h.breakers.of(node), e.Breakers[node]
		if !slices.Equal(got, want) {
			failf("breaker %q transitions (-want +got):\n%s", node, diff(want, got, func(i, j int) bool { return want[i] == got[j] }))
		}
	}
	for _, node := range sortedKeys(e.Figures) {
		s, ok := stats[node]
		if !ok {
			failf("expect.figures: no node %q", node)
			continue
		}
		for _, key := range sortedKeys(e.Figures[node]) {
			got, found := figureValue(s.Figures, key)
			switch {
			case !found:
				failf("expect.figures: node %q has no figure %q (has %s)", node, key, figureNames(s.Figures))
			case got != e.Figures[node][key]:
				failf("node %q figure %s = %v, want %v", node, key, got, e.Figures[node][key])
			}
		}
	}
	if e.FlushReasons != nil {
		got := map[string]int{}
		for _, r := range h.sinks {
			for _, reason := range r.flushReasons() {
				got[reason]++
			}
		}
		want := maps.Clone(e.FlushReasons)
		maps.DeleteFunc(want, func(_ string, n int) bool { return n == 0 })
		if !maps.Equal(got, want) {
			failf("batch flush reasons at the sinks = %s, want %s", show(got), show(want))
		}
	}
}

// bodyMatches compares a written body with an expected value: JSON bodies
// by value, others by text.
func bodyMatches(got []byte, want any) bool {
	var v any
	if json.Unmarshal(got, &v) == nil {
		if reflect.DeepEqual(v, want) {
			return true
		}
	}
	s, ok := want.(string)
	return ok && s == string(got)
}

func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func indices[T any](s []T) []int {
	out := make([]int, len(s))
	for i := range s {
		out[i] = i
	}
	return out
}

func indent(bodies [][]byte) string {
	s := ""
	for _, b := range bodies {
		s += "        " + string(b) + "\n"
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// diff shows two lists line by line, "-" for lines only in want and "+"
// for lines only in got, in the order of a longest common subsequence.
// eq reports whether want[i] and got[j] match.
func diff(want, got []string, eq func(i, j int) bool) string {
	// lcs[i][j] is the length of the longest common subsequence of
	// want[i:] and got[j:].
	lcs := make([][]int, len(want)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(got)+1)
	}
	for i := len(want) - 1; i >= 0; i-- {
		for j := len(got) - 1; j >= 0; j-- {
			if eq(i, j) {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var b strings.Builder
	i, j := 0, 0
	for i < len(want) || j < len(got) {
		switch {
		case i < len(want) && j < len(got) && eq(i, j):
			b.WriteString("      " + got[j] + "\n")
			i, j = i+1, j+1
		case i < len(want) && (j == len(got) || lcs[i+1][j] >= lcs[i][j+1]):
			b.WriteString("    - " + want[i] + "\n")
			i++
		default:
			b.WriteString("    + " + got[j] + "\n")
			j++
		}
	}
	return b.String()
}

// figureValue finds "name" or "name.label_value" among figs.
func figureValue(figs []pipeline.Figure, key string) (float64, bool) {
	for _, f := range figs {
		if f.Name == key && f.Label == "" || f.Label != "" && f.Name+"."+f.LabelValue == key {
			return f.Value, true
		}
	}
	return 0, false
}

func figureNames(figs []pipeline.Figure) string {
	var names []string
	for _, f := range figs {
		if f.Label != "" {
			names = append(names, f.Name+"."+f.LabelValue)
		} else {
			names = append(names, f.Name)
		}
	}
	if names == nil {
		return "none"
	}
	return strings.Join(names, ", ")
}
