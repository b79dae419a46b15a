package main

import (
	"strings"
	"testing"

	"github.com/pipe-dsl/pipe/pipeline"
)

// Given a finite run where messages fail and there is no dead-letter sink,
// when it ends, then it exits 1 and the summary's last line counts the
// undelivered source messages with their top reasons.
func TestARunThatNacksSourceMessagesExitsOne(t *testing.T) {
	file := writeFile(t, "nacks.yaml", `
name: nacks
source: {generate: {count: 6, message: '{"id": seq}'}}
stages: [{filter: 'msg.id < 4 || msg.nope > 1'}]
sink: {drop: {}}
`)
	code, _, stderr := runCLI("run", "--log-format", "json", file)
	if code != exitRuntime {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitRuntime, stderr)
	}
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	last := lines[len(lines)-1]
	if want := "3 source messages not delivered (nacked): expression_error 3"; last != want {
		t.Errorf("last line = %q, want %q; stderr:\n%s", last, want, stderr)
	}

	code, _, stderr = runCLI("run", "--quiet", "--log-format", "json", file)
	if code != exitRuntime || !strings.Contains(stderr, "3 source messages not delivered") {
		t.Errorf("--quiet: exit %d, want %d and the count in the log; stderr:\n%s", code, exitRuntime, stderr)
	}
}

// A run whose failures all reach the dead-letter sink delivered everything:
// exit 0 and no nack line.
func TestARunThatDeadLettersEveryFailureExitsZero(t *testing.T) {
	file := writeFile(t, "dlq.yaml", `
name: dlq
source: {generate: {count: 6, message: '{"id": seq}'}}
stages: [{filter: 'msg.id < 4 || msg.nope > 1'}]
sink: {drop: {}}
dead_letter: {drop: {}}
`)
	code, _, stderr := runCLI("run", "--log-format", "json", file)
	if code != exitOK || strings.Contains(stderr, "not delivered") {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitOK, stderr)
	}
}

func TestUndeliveredNamesTheTopReasons(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stats []pipeline.NodeStats
		n     int64
		line  string
	}{
		{"nothing nacked", []pipeline.NodeStats{{Role: pipeline.RoleSource, Acked: 3}}, 0, ""},
		{"one", []pipeline.NodeStats{{Role: pipeline.RoleSource, Nacked: 1, NackReasons: map[string]int64{"sink_error": 1}}},
			1, "1 source message not delivered (nacked): sink_error 1"},
		{"unresolved at exit count as in flight", []pipeline.NodeStats{{Role: pipeline.RoleSource, Out: 130, Acked: 0, Nacked: 1, NackReasons: map[string]int64{"abandoned": 1}}},
			130, "130 source messages not delivered (nacked): in_flight 129, abandoned 1"},
		{"sources add up, stages do not count, top three by count", []pipeline.NodeStats{
			{Role: pipeline.RoleSource, Nacked: 9, NackReasons: map[string]int64{"sink_error": 5, "timeout": 1, "abandoned": 3}},
			{Role: pipeline.RoleStage, Nacked: 7, NackReasons: map[string]int64{"rate_limited": 7}},
			{Role: pipeline.RoleSource, Nacked: 3, NackReasons: map[string]int64{"expression_error": 2, "timeout": 1}},
		}, 12, "12 source messages not delivered (nacked): sink_error 5, abandoned 3, expression_error 2, ..."},
	} {
		n, line := undelivered(tc.stats)
		if n != tc.n || line != tc.line {
			t.Errorf("%s: undelivered = %d, %q, want %d, %q", tc.name, n, line, tc.n, tc.line)
		}
	}
}

// Given a file sink whose directory does not exist, when the run starts,
// then it fails at once with exit 1 naming the sink and the path, before
// the source produced anything.
func TestARunWhoseSinkFailsItsCheckExitsOneBeforeReading(t *testing.T) {
	file := writeFile(t, "proc.yaml", `
name: proc
source: {generate: {count: 5, message: '{"id": seq}'}}
sink: {file: {path: /proc/x/y}}
`)
	code, _, stderr := runCLI("run", "--log-format", "json", file)
	if code != exitRuntime {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitRuntime, stderr)
	}
	for _, want := range []string{`sink \"sink\" (file): check before start: path /proc/x/y: directory /proc/x: no such file or directory`} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not contain %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "message failed") {
		t.Errorf("messages were read before the check failed:\n%s", stderr)
	}
}
