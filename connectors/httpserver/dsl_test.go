package httpserver_test

import (
	"strings"
	"testing"

	_ "github.com/pipe-dsl/pipe/connectors"
	"github.com/pipe-dsl/pipe/dsl"
)

// compile parses and compiles src with no environment variable set.
func compile(src string) error {
	opts := dsl.Options{Lookup: func(string) (string, bool) { return "", false }}
	cfg, err := dsl.Parse("in.yaml", []byte(src), &opts)
	if err != nil {
		return err
	}
	_, err = dsl.Compile(cfg, &dsl.CompileOptions{Options: opts})
	return err
}

// TestEmptyTokenFromTheEnvironmentIsRefused: Given the shipped shape
// token: "${INGEST_TOKEN:-}" with INGEST_TOKEN unset, then the pipeline
// does not compile (it used to run with no authentication at all) and the
// error says how to fix it; with auth: none it compiles.
func TestEmptyTokenFromTheEnvironmentIsRefused(t *testing.T) {
	const src = `
source:
  http_server: {address: "127.0.0.1:0", token: "${INGEST_TOKEN:-}"%s}
sink:
  drop: {}
`
	err := compile(strings.Replace(src, "%s", "", 1))
	if err == nil || !strings.Contains(err.Error(), "auth: none") || !strings.Contains(err.Error(), "in.yaml:3") {
		t.Fatalf("compile(empty token) = %v, want an error at in.yaml:3 naming auth: none", err)
	}
	if err := compile(`
source:
  http_server: {address: "127.0.0.1:0", auth: none}
sink:
  drop: {}
`); err != nil {
		t.Fatalf("compile(auth: none) = %v, want nil", err)
	}
}
