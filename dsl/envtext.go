package dsl

import (
	"slices"

	"gopkg.in/yaml.v3"
)

// envTextUnder returns the texts taken from the environment by the scalars
// under n, longest first so a kind replacing them meets a text before any
// text it contains.
func (c *Config) envTextUnder(n *yaml.Node) []string {
	var out []string
	seen := map[*yaml.Node]bool{}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n == nil || seen[n] {
			return
		}
		seen[n] = true
		out = append(out, c.envText[n]...)
		for _, k := range n.Content {
			walk(k)
		}
	}
	walk(n)
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return slices.Compact(out)
}
