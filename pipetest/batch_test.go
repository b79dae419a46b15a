package pipetest_test

import (
	"context"
	"testing"

	"github.com/pipe-dsl/pipe/pipetest"
)

// Batches recorded at the sinks are counted by their flush reason.
func TestFlushReasonsOfBatchesAtTheSinks(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "b.yaml", `
name: b
source: {generate: {message: '{"n": seq}'}}
stages:
  - batch: {size: 2, max_wait: 1s}
sink: {name: out, stdout: {}}
`)
	f := write(t, dir, "b_test.yaml", `
pipeline: b.yaml
tests:
  - name: two full batches, then one that waited
    steps:
      - send: [{n: 1}, {n: 2}, {n: 3}, {n: 4}, {n: 5}]
      - advance: 1s
    expect:
      counts: {out: 5}
      flush_reasons: {size: 2, wait: 1}
  - name: what is left when the input ends is flushed by shutdown
    input: [{n: 1}, {n: 2}, {n: 3}]
    expect:
      flush_reasons: {size: 1, shutdown: 1}
  - name: a wrong count fails
    input: [{n: 1}, {n: 2}]
    expect:
      flush_reasons: {wait: 1}
`)
	res, err := pipetest.RunFile(context.Background(), f, pipetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 {
		t.Fatalf("got %d results, want 3", len(res))
	}
	for _, r := range res[:2] {
		if len(r.Failures) != 0 {
			t.Errorf("%s: %v", r.Name, r.Failures)
		}
	}
	if got, want := res[2].Failures, `batch flush reasons at the sinks = {"size":1}, want {"wait":1}`; len(got) != 1 || got[0] != want {
		t.Errorf("%s: failures %q, want [%q]", res[2].Name, got, want)
	}
}
