package dsl_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/pipe-dsl/pipe/dsl"
)

func TestGraphOfNamesTheNodesAndEdgesGraphDrawsWithSecretsHidden(t *testing.T) {
	file := `
name: live
sources:
  in: {stdin: {}}
stages:
  slow: {inputs: [in], throttle: {rate: 5/s}}
sinks:
  api:
    inputs: [slow]
    http: {url: "http://127.0.0.1:1/x", token: inline-token-1234}
dead_letter: {stdout: {}}
`
	c, err := dsl.Parse("live.yaml", []byte(file), &dsl.Options{Lookup: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	nodes, edges := dsl.GraphOf(c, nil)
	var names []string
	for _, n := range nodes {
		names = append(names, n.Name)
		if strings.Contains(strings.Join(n.Settings, "\n"), "inline-token-1234") {
			t.Errorf("node %s settings show the token: %q", n.Name, n.Settings)
		}
	}
	if got, want := fmt.Sprint(names), "[in slow api dead_letter]"; got != want {
		t.Fatalf("GraphOf nodes = %s, want %s", got, want)
	}
	if !nodes[3].DeadLetter || !slices.Contains(nodes[1].Settings, "rate: 5/s") {
		t.Fatalf("GraphOf nodes = %+v, want dead_letter last and slow's rate shown", nodes)
	}
	if got := fmt.Sprint(edges); !strings.Contains(got, "{in slow  false}") || !strings.Contains(got, "{api dead_letter  true}") {
		t.Fatalf("GraphOf edges = %s, want in->slow and a failure edge api->dead_letter", got)
	}
	if got := c.SecretValues(nil); !slices.Equal(got, []string{"inline-token-1234"}) {
		t.Fatalf("SecretValues() = %q, want the token", got)
	}
}
