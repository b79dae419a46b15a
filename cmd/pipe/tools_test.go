package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/dsl"
)

func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// The checked-in reference and schema are what the registry generates;
// `make docs` rewrites them.
func TestDocsAreUpToDate(t *testing.T) {
	for file, args := range map[string][]string{
		"../../docs/kinds.md":         {"kinds", "--markdown"},
		"../../docs/pipe.schema.json": {"schema"},
	} {
		code, out, stderr := runCLI(args...)
		if code != exitOK {
			t.Fatalf("pipe %v: exit %d: %s", args, code, stderr)
		}
		want, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if out != string(want) {
			t.Errorf("%s is stale: run `make docs`", file)
		}
	}
}

func TestKindsDescribesEveryRegisteredField(t *testing.T) {
	_, md, _ := runCLI("kinds", "--markdown")
	for _, r := range roles {
		for _, k := range component.Default.Kinds(r) {
			if !strings.Contains(md, "### `"+k.Name+"`") {
				t.Errorf("kinds reference misses %s %q", r, k.Name)
			}
			for _, f := range k.Fields {
				if strings.TrimSpace(f.Description) == "" {
					t.Errorf("%s.%s has no description", k.Name, f.Name)
				}
				if !strings.Contains(md, "`"+f.Name+"`") {
					t.Errorf("kinds reference misses field %s.%s", k.Name, f.Name)
				}
			}
		}
	}
	if code, out, _ := runCLI("kinds", "filter"); code != exitOK || !strings.Contains(out, "condition (expr (bool)), required") {
		t.Errorf("pipe kinds filter = %d\n%s", code, out)
	}
	if code, _, stderr := runCLI("kinds", "nope"); code != exitConfig || !strings.Contains(stderr, `no kind "nope"`) {
		t.Errorf("pipe kinds nope = %d, %q", code, stderr)
	}
}

func TestGraphCommand(t *testing.T) {
	code, out, _ := runCLI("graph", "--format", "dot", "../../pipelines/quickstart.yaml")
	if code != exitOK || !strings.HasPrefix(out, `digraph "quickstart"`) {
		t.Errorf("pipe graph --format dot = %d\n%s", code, out)
	}
	if code, after, _ := runCLI("graph", "../../pipelines/quickstart.yaml", "--format", "dot"); code != exitOK || after != out {
		t.Errorf("pipe graph FILE --format dot = %d, want the same graph as with the flag first:\n%s", code, after)
	}
	t.Setenv("TOKEN", "")
	os.Unsetenv("TOKEN")
	code, out, stderr := runCLI("graph", "../../dsl/testdata/graph/fanout.yaml")
	if code != exitOK || !strings.Contains(out, "message: (hidden)") {
		t.Errorf("pipe graph with ${TOKEN} unset = %d, %s\n%s", code, stderr, out)
	}
	if code, _, _ := runCLI("graph", "--format", "png", "../../pipelines/quickstart.yaml"); code != exitConfig {
		t.Errorf("unknown format: exit %d, want %d", code, exitConfig)
	}
	if code, _, _ := runCLI("graph"); code != exitConfig {
		t.Errorf("no file: exit %d, want %d", code, exitConfig)
	}
}

func TestKindsMarkdownIsText(t *testing.T) {
	_, md, _ := runCLI("kinds", "--markdown")
	for _, h := range []string{"\n## Sources\n", "\n## Stages\n", "\n## Sinks\n"} {
		if !strings.Contains(md, h) {
			t.Errorf("no heading %q", h)
		}
	}
	if strings.ContainsRune(md, 0) {
		t.Error("markdown holds a NUL byte")
	}
}

// pipe kinds describes every policy block from the spec the decoder and the
// schema use: each field, its default and its example.
func TestKindsDescribesThePolicyBlocks(t *testing.T) {
	names := map[string]bool{}
	for _, k := range dsl.Policies() {
		names[k.Name] = true
		code, out, stderr := runCLI("kinds", k.Name)
		if code != exitOK {
			t.Fatalf("pipe kinds %s: exit %d: %s", k.Name, code, stderr)
		}
		if !strings.HasPrefix(out, k.Name+" (policy block of any sink or stage): ") {
			t.Errorf("pipe kinds %s starts %q", k.Name, strings.SplitN(out, "\n", 2)[0])
		}
		for _, f := range k.Fields {
			for _, want := range []string{"  " + f.Name + " (", f.Description, "default: " + f.Default, "example: " + f.Example} {
				if strings.HasSuffix(want, ": ") {
					continue // no default or example
				}
				if !strings.Contains(out, want) {
					t.Errorf("pipe kinds %s lacks %q:\n%s", k.Name, want, out)
				}
			}
		}
	}
	for _, n := range []string{"retry", "breaker", "timeout"} {
		if !names[n] {
			t.Errorf("dsl.Policies() lacks %s", n)
		}
	}
	if _, out, _ := runCLI("kinds"); !strings.Contains(out, "policy blocks") {
		t.Errorf("pipe kinds does not list the policy blocks:\n%s", out)
	}
}
