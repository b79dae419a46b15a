package connectors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/pipeline"
)

type fileSourceConfig struct {
	Path    string         `pipe:"path,required" desc:"File to read, one message per line." example:"events.ndjson"`
	Follow  bool           `pipe:"follow" desc:"Keep reading as the file grows (like tail -f), reopening it if it is truncated; stop only on shutdown." example:"true"`
	Poll    time.Duration  `pipe:"poll" desc:"How often a following reader checks for new data." example:"250ms" min:"0.001"`
	MaxLine component.Size `pipe:"max_line" desc:"Longest accepted line; longer lines go to the dead-letter path." example:"1MiB" min:"1"`
}

type fileSinkConfig struct {
	Path   string `pipe:"path,required" desc:"File to append messages to, one per line." example:"out.ndjson"`
	Append bool   `pipe:"append" desc:"Append to an existing file instead of truncating it." example:"false"`
	Sync   bool   `pipe:"sync" desc:"fsync after every write before acking: slower, but an acked message survives a machine crash." example:"true"`
}

func init() {
	component.Register(component.Source("file",
		"Reads newline-delimited messages from a file, optionally following it as it grows.",
		fileSourceConfig{Poll: 250 * time.Millisecond, MaxLine: DefaultMaxLine}, newFileSource, component.WithFailures()))
	component.Register(component.Sink("file",
		"Writes each message (each batch member) as one line of a file.",
		fileSinkConfig{Append: true}, newFileSink))
}

type fileSource struct {
	cfg   fileSourceConfig
	clock pipeline.Clock
}

var _ pipeline.Source = (*fileSource)(nil)

func newFileSource(c *fileSourceConfig, env component.Env) (pipeline.Source, error) {
	return &fileSource{cfg: *c, clock: env.Clock}, nil
}

func (s *fileSource) Read(ctx context.Context, out pipeline.Outlet) error {
	f, err := os.Open(s.cfg.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	if !s.cfg.Follow {
		return readLines(ctx, f, int(s.cfg.MaxLine), out)
	}
	return s.follow(ctx, f, out)
}

// follow reads f forever, polling at EOF, until ctx is done.
func (s *fileSource) follow(ctx context.Context, f *os.File, out pipeline.Outlet) error {
	cr := &countingReader{r: f}
	lr := newLineReader(cr, int(s.cfg.MaxLine))
	t := s.clock.NewTimer(s.cfg.Poll)
	defer t.Stop()
	for {
		line, err := lr.next()
		switch {
		case err == nil:
			if out.Send(ctx, pipeline.NewMessage(line, nil)) != nil {
				return nil
			}
			continue
		case errors.Is(err, ErrLineTooLong):
			out.Fail(ctx, pipeline.NewMessage(nil, nil), pipeline.WithReason(pipeline.ReasonInvalidPayload, err))
			continue
		case !errors.Is(err, io.EOF):
			return err
		}
		t.Reset(s.cfg.Poll)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
		}
		if st, err := f.Stat(); err == nil && st.Size() < cr.n {
			// Truncated: start over.
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return err
			}
			cr.n = 0
			lr = newLineReader(cr, int(s.cfg.MaxLine))
		}
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// fileSink writes lines; the file opens on the first write.
type fileSink struct {
	cfg fileSinkConfig
	mu  sync.Mutex
	f   *os.File
	buf []byte
}

var (
	_ pipeline.Sink        = (*fileSink)(nil)
	_ pipeline.Closer      = (*fileSink)(nil)
	_ pipeline.Checker     = (*fileSink)(nil)
	_ pipeline.SliceWriter = (*fileSink)(nil)
)

func newFileSink(c *fileSinkConfig, _ component.Env) (pipeline.Sink, error) {
	return &fileSink{cfg: *c}, nil
}

func (s *fileSink) Write(_ context.Context, m *pipeline.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = appendLines(s.buf[:0], m)
	return s.write()
}

// WriteSlice writes the lines of every message of ms in one system call
// (and one fsync with sync): all delivered, or none acked.
func (s *fileSink) WriteSlice(_ context.Context, ms []*pipeline.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = s.buf[:0]
	for _, m := range ms {
		s.buf = appendLines(s.buf, m)
	}
	return s.write()
}

// write writes s.buf, opening the file on first use; s.mu is held.
func (s *fileSink) write() error {
	if s.f == nil {
		flags := os.O_CREATE | os.O_WRONLY | os.O_APPEND
		if !s.cfg.Append {
			flags |= os.O_TRUNC
		}
		f, err := os.OpenFile(s.cfg.Path, flags, 0o644)
		if err != nil {
			return err
		}
		s.f = f
	}
	if _, err := s.f.Write(s.buf); err != nil {
		return fmt.Errorf("write %s: %w", s.cfg.Path, err)
	}
	if s.cfg.Sync {
		return s.f.Sync()
	}
	return nil
}

// Check fails when the path cannot be written: its directory is missing or
// not a directory, the path is a directory, or the process may not write
// there. It opens nothing (the path may be a FIFO, whose open blocks).
func (s *fileSink) Check(context.Context) error {
	path := s.cfg.Path
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	switch {
	case err != nil:
		return fmt.Errorf("path %s: directory %s: %w", path, dir, errors.Unwrap(err))
	case !st.IsDir():
		return fmt.Errorf("path %s: %s is not a directory", path, dir)
	}
	if st, err := os.Stat(path); err == nil {
		if st.IsDir() {
			return fmt.Errorf("path %s is a directory", path)
		}
		dir = path // an existing file must be writable itself
	}
	if err := writable(dir); err != nil {
		return fmt.Errorf("path %s: %s: %w", path, dir, err)
	}
	return nil
}

func (s *fileSink) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

// appendLines appends m's body, or each member's for a batch, with newlines.
func appendLines(buf []byte, m *pipeline.Message) []byte {
	if b := m.Batch(); b != nil {
		for _, x := range b {
			buf = append(append(buf, x.Body...), '\n')
		}
		return buf
	}
	return append(append(buf, m.Body...), '\n')
}
