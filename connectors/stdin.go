package connectors

import (
	"context"
	"os"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/pipeline"
)

type stdinConfig struct {
	MaxLine component.Size `pipe:"max_line" desc:"Longest accepted line; longer lines go to the dead-letter path." example:"1MiB" min:"1"`
}

func init() {
	component.Register(component.Source("stdin",
		"Reads newline-delimited messages from standard input until EOF.",
		stdinConfig{MaxLine: DefaultMaxLine}, newStdin, component.WithFailures()))
}

type stdin struct{ max int }

var _ pipeline.Source = (*stdin)(nil)

func newStdin(c *stdinConfig, _ component.Env) (pipeline.Source, error) {
	return &stdin{max: int(c.MaxLine)}, nil
}

func (s *stdin) Read(ctx context.Context, out pipeline.Outlet) error {
	return readLines(ctx, os.Stdin, s.max, out)
}
