package main

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

var elapsed = regexp.MustCompile(`\(\d+\.\d+s\)`)

// A failing pipe test prints go test style reports: "--- FAIL: name", one
// indented line (or -want +got diff) per broken expectation, a closing
// "N passed, N failed" line, and exits 1.
func TestTestReportsFailuresLikeGoTest(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		golden string
	}{
		{[]string{"test", "testdata/test/failing_test.yaml"}, "testdata/test/failing.golden"},
		{[]string{"test", "-v", "testdata/test/failing_test.yaml"}, "testdata/test/failing_v.golden"},
		{[]string{"test", "testdata/test/failing_test.yaml", "-v"}, "testdata/test/failing_v.golden"},
	} {
		code, out, stderr := runCLI(tc.args...)
		if code != exitRuntime {
			t.Errorf("pipe %v: exit %d, want %d; stderr:\n%s", tc.args, code, exitRuntime, stderr)
		}
		got := elapsed.ReplaceAllString(out, "(0.00s)")
		if *update {
			if err := os.WriteFile(tc.golden, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(tc.golden)
		if err != nil {
			t.Fatal(err)
		}
		if got != string(want) {
			t.Errorf("pipe %v: got\n%s\nwant (%s)\n%s", tc.args, got, tc.golden, want)
		}
	}
}

func TestTestExitCodes(t *testing.T) {
	code, out, _ := runCLI("test", "../../pipelines/quickstart_test.yaml")
	if code != exitOK || !strings.HasSuffix(out, " passed, 0 failed\n") || strings.HasPrefix(out, "0 passed") {
		t.Errorf("passing tests: exit %d, output\n%s", code, out)
	}
	bad := writeFile(t, "bad_test.yaml", "pipeline: nope.yaml\ntests: [{name: x}]\n")
	if code, _, stderr := runCLI("test", bad); code != exitConfig || !strings.Contains(stderr, "nope.yaml") {
		t.Errorf("missing pipeline: exit %d, stderr %q", code, stderr)
	}
	if code, _, _ := runCLI("test"); code != exitConfig {
		t.Errorf("no file: exit %d, want %d", code, exitConfig)
	}
}

// `make validate` runs pipelines/*_test.yaml; every example pipeline needs
// one so that CI exercises it without services.
func TestEveryExamplePipelineHasATestFile(t *testing.T) {
	files, _ := filepath.Glob("../../pipelines/*.yaml")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.yaml") {
			continue
		}
		if _, err := os.Stat(strings.TrimSuffix(f, ".yaml") + "_test.yaml"); err != nil {
			t.Errorf("%s has no %s_test.yaml next to it (see pipelines/quickstart_test.yaml)", f, strings.TrimSuffix(filepath.Base(f), ".yaml"))
		}
	}
}
