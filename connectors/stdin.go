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

// stdin reads in (os.Stdin outside tests).
type stdin struct {
	in  *os.File
	max int
}

var _ pipeline.Source = (*stdin)(nil)

func newStdin(c *stdinConfig, _ component.Env) (pipeline.Source, error) {
	return &stdin{in: os.Stdin, max: int(c.MaxLine)}, nil
}

// Read sends every line until EOF or the soft stop, which interrupts a read
// blocked on an input that stays open.
func (s *stdin) Read(ctx context.Context, out pipeline.Outlet) error {
	in, restore := interruptible(s.in)
	defer restore()
	return readLines(ctx, in, s.max, out)
}
