package connectors

import (
	"context"
	"io"
	"os"
	"sync"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/pipeline"
)

type stdoutConfig struct{}

func init() {
	component.Register(component.Sink("stdout",
		"Writes each message (each batch member) as one line on standard output.",
		stdoutConfig{}, func(*stdoutConfig, component.Env) (pipeline.Sink, error) {
			return &writerSink{w: os.Stdout}, nil
		}))
}

// writerSink writes lines to w; one Write call per message or batch, so an
// acked message has reached the operating system.
type writerSink struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

var _ pipeline.Sink = (*writerSink)(nil)

func (s *writerSink) Write(_ context.Context, m *pipeline.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = appendLines(s.buf[:0], m)
	_, err := s.w.Write(s.buf)
	return err
}
