package pipetest_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/pipe-dsl/pipe/pipetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const pipelineYAML = `
name: t
source:
  generate: {message: '{"n": seq}'}
stages:
  - name: parse
    map: '{"n": msg.n, "double": msg.n * 2}'
sink:
  name: out
  stdout: {}
dead_letter:
  drop: {}
`

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func run(t *testing.T, test string) []pipetest.Result {
	t.Helper()
	dir := t.TempDir()
	write(t, dir, "p.yaml", pipelineYAML)
	res, err := pipetest.RunFile(context.Background(), write(t, dir, "p_test.yaml", test), pipetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestPassingExpectations(t *testing.T) {
	res := run(t, `
pipeline: p.yaml
tests:
  - name: doubles and dead-letters bad input
    input: [{n: 1}, 'oops', {n: 3}]
    expect:
      sinks: {out: [{n: 1, double: 2}, {n: 3, double: 6}]}
      dead_letters: [{stage: parse, reason: invalid_payload, payload_text: oops}]
      acked: 3
      nacked: 0
`)
	if len(res) != 1 || len(res[0].Failures) != 0 {
		t.Fatalf("results = %+v", res)
	}
}

func TestFailuresSayWhatDiffers(t *testing.T) {
	res := run(t, `
pipeline: p.yaml
tests:
  - name: wrong
    input: [{n: 1}]
    expect:
      sinks: {out: [{n: 1, double: 3}]}
      dead_letters: [{reason: expression_error}]
      acked: 0
`)
	if len(res) != 1 {
		t.Fatalf("results = %+v", res)
	}
	all := strings.Join(res[0].Failures, "\n")
	for _, want := range []string{
		`sink "out" got 1 messages, want 1 (-want +got):`, `+ {"double":2,"n":1}`, `- {"double":3,"n":1}`,
		"got 0 dead letters, want 1", "acked 1 source messages, want 0",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("failures miss %q:\n%s", want, all)
		}
	}
}

// A sink fault with 30s of latency and a retry-free failure runs on the
// virtual clock: the test finishes without waiting 30s of real time.
func TestFaultsRunOnTheVirtualClock(t *testing.T) {
	res := run(t, `
pipeline: p.yaml
tests:
  - name: slow then failing sink
    faults:
      out: {fail: 1, error: "503 unavailable", latency: 30s}
    steps:
      - send: [{n: 1}]
      - advance: 1m
      - send: [{n: 2}]
    expect:
      sinks: {out: [{n: 2, double: 4}]}
      dead_letters: [{stage: out, reason: sink_error, error: "503 unavailable"}]
      acked: 2
`)
	if len(res) != 1 || len(res[0].Failures) != 0 {
		t.Fatalf("results = %+v", res)
	}
}

func TestBadTestFilesAreConfigErrors(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "p.yaml", pipelineYAML)
	for name, test := range map[string]string{
		"unknown key":   "pipeline: p.yaml\ntests:\n  - name: x\n    inptu: []\n",
		"unknown sink":  "pipeline: p.yaml\ntests:\n  - name: x\n    faults: {nope: {fail: 1}}\n",
		"no tests":      "pipeline: p.yaml\n",
		"bad advance":   "pipeline: p.yaml\ntests:\n  - name: x\n    steps: [{advance: soon}]\n",
		"missing file":  "pipeline: nope.yaml\ntests:\n  - name: x\n",
		"unknown input": "pipeline: p.yaml\ntests:\n  - name: x\n    inputs: {other: [1]}\n",
		"bad state":     "pipeline: p.yaml\ntests:\n  - name: x\n    expect: {breakers: {out: [opened]}}\n",
	} {
		f := write(t, dir, "bad_test.yaml", test)
		if _, err := pipetest.RunFile(context.Background(), f, pipetest.Options{}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
