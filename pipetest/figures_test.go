package pipetest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/pipe-dsl/pipe/pipetest"
)

// expect.figures checks a node's own figures, by name or name.label_value.
func TestFiguresOfANodeAreChecked(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "w.yaml", `
name: w
source: {generate: {message: '{"ts": seq}'}}
stages:
  - window: {size: 10ms, event_time: msg.ts, aggregate: {n: count()}}
sink: {name: out, stdout: {}}
`)
	f := write(t, dir, "w_test.yaml", `
pipeline: w.yaml
tests:
  - name: windows closed by reason
    input: [{ts: 1}, {ts: 12}, {ts: 25}, {ts: 3}]
    expect:
      sinks: {out: [{window_start: "1970-01-01T00:00:00Z", window_end: "1970-01-01T00:00:00.01Z", n: 1},
                    {window_start: "1970-01-01T00:00:00.01Z", window_end: "1970-01-01T00:00:00.02Z", n: 1},
                    {window_start: "1970-01-01T00:00:00.02Z", window_end: "1970-01-01T00:00:00.03Z", n: 1}]}
      figures: {window: {windows_closed.watermark: 2, windows_closed.end_of_input: 1, late: 1}}
  - name: a wrong value and an unknown figure fail
    input: [{ts: 1}]
    expect:
      figures: {window: {late: 1, closed: 1}}
`)
	res, err := pipetest.RunFile(context.Background(), f, pipetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 {
		t.Fatalf("got %d results, want 2", len(res))
	}
	if len(res[0].Failures) != 0 {
		t.Errorf("%s: %v", res[0].Name, res[0].Failures)
	}
	got := strings.Join(res[1].Failures, "\n")
	if len(res[1].Failures) != 2 || !strings.Contains(got, `has no figure "closed"`) || !strings.Contains(got, `figure late = 0, want 1`) {
		t.Errorf("%s: failures %q", res[1].Name, res[1].Failures)
	}
}
