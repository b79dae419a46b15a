package connectors

import (
	"context"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/pipeline"
)

type dropConfig struct{}

func init() {
	component.Register(component.Sink("drop",
		"Accepts and acks every message without writing it anywhere: for benchmarks and tests.",
		dropConfig{}, func(*dropConfig, component.Env) (pipeline.Sink, error) { return dropSink{}, nil }))
}

type dropSink struct{}

func (dropSink) Write(context.Context, *pipeline.Message) error { return nil }
