// Package dsltest compiles pipeline YAML for connector tests that live
// outside the connector's package (dsl imports every connector).
package dsltest

import (
	"testing"

	"github.com/pipe-dsl/pipe/dsl"
	"github.com/pipe-dsl/pipe/pipeline"
)

// Compile builds a pipeline from YAML, replacing the sinks named in sinks
// (the dead-letter sink by "dead_letter").
func Compile(t testing.TB, src string, sinks map[string]pipeline.Sink) *dsl.Compiled {
	t.Helper()
	c, err := dsl.Parse(t.Name()+".yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := dsl.Compile(c, &dsl.CompileOptions{Replace: func(n *dsl.Node) (any, bool) {
		s, ok := sinks[n.Name]
		return s, ok && n.Role == pipeline.RoleSink
	}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}
