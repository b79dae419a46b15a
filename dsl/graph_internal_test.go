package dsl

import (
	"testing"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/pipeline"
)

// A renamed source kind would silently lose its dead-letter edge.
func TestSourcesThatFailAreRegistered(t *testing.T) {
	for _, name := range sourcesThatFail {
		if _, ok := component.Default.Lookup(pipeline.RoleSource, name); !ok {
			t.Errorf("sourcesThatFail names %q, which is not a registered source kind", name)
		}
	}
}
