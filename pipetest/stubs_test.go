package pipetest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/pipe-dsl/pipe/pipetest"
)

const lookupYAML = `
name: t
source:
  generate: {message: '{"n": seq}'}
stages:
  - name: parse
    map: 'msg'
  - name: enrich
    lookup:
      redis: {url: "redis://127.0.0.1:1/0"}
      key: msg.n
      into: found
      on_missing: dead_letter
sink:
  name: out
  stdout: {}
dead_letter:
  drop: {}
`

func runLookupTest(t *testing.T, test string) ([]pipetest.Result, error) {
	t.Helper()
	dir := t.TempDir()
	write(t, dir, "p.yaml", lookupYAML)
	return pipetest.RunFile(context.Background(), write(t, dir, "p_test.yaml", test), pipetest.Options{})
}

func TestStubsAnswerALookupWithoutItsStore(t *testing.T) {
	res, err := runLookupTest(t, `
pipeline: p.yaml
tests:
  - name: stubbed
    input: [{n: 1}, {n: 2}]
    stubs:
      enrich: {"1": {tier: gold}}
    expect:
      sinks: {out: [{n: 1, found: {tier: gold}}]}
      dead_letters: [{stage: enrich, reason: lookup_missing}]
  - name: a wrong expectation fails
    input: [{n: 1}]
    stubs:
      enrich: {"1": {tier: silver}}
    expect:
      sinks: {out: [{n: 1, found: {tier: gold}}]}
`)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || len(res[0].Failures) != 0 || len(res[1].Failures) == 0 {
		t.Fatalf("results = %+v, want the first to pass and the second to fail", res)
	}
}

func TestStubsOfANodeThatIsNoLookupAreAnError(t *testing.T) {
	for node, want := range map[string]string{"parse": `node "parse" is not a lookup stage`, "nope": `no node "nope"`} {
		_, err := runLookupTest(t, `
pipeline: p.yaml
tests:
  - name: bad stub
    input: [{n: 1}]
    stubs:
      `+node+`: {"1": 1}
`)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("stubs on %s: error %v, want one with %q", node, err, want)
		}
	}
}
