package dsl_test

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pipe-dsl/pipe/dsl"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestGraphGolden(t *testing.T) {
	env := map[string]string{"TOKEN": "s3cr3t-token", "ARCHIVE_PATH": "/srv/secret-path.ndjson", "INBOX": "/srv/secret-inbox.ndjson"}
	opts := &dsl.Options{Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	for _, file := range []string{"testdata/graph/fanout.yaml", "testdata/graph/relay.yaml", "testdata/graph/routed.yaml", "../pipelines/quickstart.yaml", "../pipelines/resilient.yaml", "../pipelines/throttle.yaml", "../pipelines/throttle_batch.yaml", "../pipelines/resilient_http.yaml", "../pipelines/user_spend.yaml", "../pipelines/orders_by_tier.yaml"} {
		c, err := dsl.ParseFile(file, opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, format := range []string{dsl.GraphMermaid, dsl.GraphDot} {
			got, err := dsl.Graph(c, nil, format)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range env {
				if strings.Contains(got, v) {
					t.Errorf("%s graph shows the value of an environment variable: %q", format, v)
				}
			}
			golden := filepath.Join("testdata/graph", strings.TrimSuffix(filepath.Base(file), ".yaml")+"."+format)
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("%s: got\n%s\nwant\n%s", golden, got, want)
			}
		}
	}
	if _, err := dsl.Graph(&dsl.Config{}, nil, "png"); err == nil {
		t.Error("Graph accepted an unknown format")
	}
}

// Every example pipeline's dot output is accepted by Graphviz, so
// `pipe graph FILE --format dot | dot -Tpng` renders it.
func TestGraphDotRenders(t *testing.T) {
	dot, err := exec.LookPath("dot")
	if err != nil {
		t.Skip("Graphviz dot is not on PATH")
	}
	files, _ := filepath.Glob("../pipelines/*.yaml")
	files = append(files, "testdata/graph/fanout.yaml", "testdata/graph/relay.yaml", "testdata/graph/routed.yaml")
	for _, file := range files {
		if strings.HasSuffix(file, "_test.yaml") {
			continue
		}
		t.Run(filepath.Base(file), func(t *testing.T) {
			c, err := dsl.ParseFile(file, &dsl.Options{Lookup: func(string) (string, bool) { return "x", true }})
			if err != nil {
				t.Fatal(err)
			}
			src, err := dsl.Graph(c, nil, dsl.GraphDot)
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(dot, "-Tsvg")
			cmd.Stdin = strings.NewReader(src)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			svg, err := cmd.Output()
			if err != nil || stderr.Len() > 0 {
				t.Fatalf("dot -Tsvg: %v\n%s\n%s", err, stderr.String(), src)
			}
			if !bytes.Contains(svg, []byte("<svg")) || !bytes.Contains(svg, []byte(c.Name)) {
				t.Errorf("dot -Tsvg output is not an SVG of %s:\n%.300s", c.Name, svg)
			}
		})
	}
}

// docs/tooling.md shows the signature example's graph as pipe graph draws
// it today.
func TestToolingDocShowsTheCurrentGraph(t *testing.T) {
	doc, err := os.ReadFile("../docs/tooling.md")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/graph/quickstart.mermaid")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "```mermaid\n"+string(want)+"```") {
		t.Errorf("docs/tooling.md does not hold testdata/graph/quickstart.mermaid in a mermaid block; copy it over")
	}
}
