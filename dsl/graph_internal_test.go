package dsl

import (
	"context"
	"testing"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/pipeline"
)

type nopSource struct{}

func (nopSource) Read(context.Context, pipeline.Outlet) error { return nil }

func TestOnlySourceKindsRegisteredWithFailuresGetAFailureEdge(t *testing.T) {
	reg := component.NewRegistry()
	build := func(*struct{}, component.Env) (pipeline.Source, error) { return nopSource{}, nil }
	reg.MustRegister(component.Source("quiet", "", struct{}{}, build))
	reg.MustRegister(component.Source("failing", "", struct{}{}, build, component.WithFailures()))
	for _, c := range []struct {
		n    Node
		want bool
	}{
		{Node{Role: pipeline.RoleSource, Kind: "quiet"}, false},
		{Node{Role: pipeline.RoleSource, Kind: "failing"}, true},
		{Node{Role: pipeline.RoleSource, Kind: "unknown"}, false},
		{Node{Role: pipeline.RoleStage, Kind: "anything"}, true},
		{Node{Role: pipeline.RoleSink, Kind: "anything"}, true},
	} {
		if got := canFail(reg, &c.n); got != c.want {
			t.Errorf("canFail(%v %q) = %v, want %v", c.n.Role, c.n.Kind, got, c.want)
		}
	}
}
