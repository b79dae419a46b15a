package dsl_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pipe-dsl/pipe/dsl"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestGraphGolden(t *testing.T) {
	env := map[string]string{"TOKEN": "s3cr3t-token", "ARCHIVE_PATH": "/srv/secret-path.ndjson"}
	opts := &dsl.Options{Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	for _, file := range []string{"testdata/graph/fanout.yaml", "../pipelines/quickstart.yaml"} {
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
