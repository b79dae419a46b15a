package connectors

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/pipe-dsl/pipe/pipeline"
)

// DefaultMaxLine bounds one newline-delimited message.
const DefaultMaxLine = 1 << 20

// ErrLineTooLong is the error of a line longer than the source's max_line.
var ErrLineTooLong = errors.New("line exceeds max_line")

// lineReader frames newline-delimited messages. A final line without a
// newline is a message too. Blank lines are skipped; a trailing \r is kept
// out of the message.
type lineReader struct {
	r   *bufio.Reader
	max int
	// buf holds a line cut short by EOF; the next call continues it.
	buf []byte
}

func newLineReader(r io.Reader, max int) *lineReader {
	if max <= 0 {
		max = DefaultMaxLine
	}
	return &lineReader{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// next returns the next line (a fresh slice), or io.EOF when no complete
// line is left; the partial line read so far stays buffered for the next
// call (see [lineReader.rest]). A line longer than max is skipped and
// reported as ErrLineTooLong.
func (l *lineReader) next() ([]byte, error) {
	for {
		chunk, err := l.r.ReadSlice('\n')
		if len(l.buf)+len(chunk) > l.max+1 {
			l.buf = l.buf[:0]
			if err == bufio.ErrBufferFull {
				if serr := l.skipLine(); serr != nil && serr != io.EOF {
					return nil, serr
				}
			}
			return nil, fmt.Errorf("%w (%d bytes)", ErrLineTooLong, l.max)
		}
		l.buf = append(l.buf, chunk...)
		switch err {
		case nil:
			line := bytes.TrimRight(l.buf[:len(l.buf)-1], "\r")
			l.buf = nil
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			return line, nil
		case bufio.ErrBufferFull:
			continue
		default:
			return nil, err
		}
	}
}

// rest returns and forgets a final line that has no newline: nil if it is
// blank, ErrLineTooLong if it is longer than max.
func (l *lineReader) rest() ([]byte, error) {
	line := l.buf
	l.buf = nil
	if len(line) > l.max {
		return nil, fmt.Errorf("%w (%d bytes)", ErrLineTooLong, l.max)
	}
	line = bytes.TrimRight(line, "\r")
	if len(bytes.TrimSpace(line)) == 0 {
		return nil, nil
	}
	return line, nil
}

func (l *lineReader) skipLine() error {
	for {
		_, err := l.r.ReadSlice('\n')
		if err != bufio.ErrBufferFull {
			return err
		}
	}
}

// readLines sends every line of r as a message until EOF, ctx is done or
// reading fails. If r has read deadlines (pipes, sockets), cancelling ctx
// interrupts a blocked read. Lines already in the read buffer go on
// together ([pipeline.SendAll]); a line is never held back waiting for
// the next read.
func readLines(ctx context.Context, r io.Reader, max int, out pipeline.Outlet) error {
	if d, ok := r.(interface{ SetReadDeadline(time.Time) error }); ok {
		stop := context.AfterFunc(ctx, func() { _ = d.SetReadDeadline(time.Unix(1, 0)) })
		defer stop()
	}
	lr := newLineReader(r, max)
	batch := make([]*pipeline.Message, 0, lineBatch)
	send := func() error {
		err := pipeline.SendAll(ctx, out, batch)
		clear(batch)
		batch = batch[:0]
		return err
	}
	for {
		line, err := lr.next()
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			if send() != nil {
				return nil
			}
			switch last, err := lr.rest(); {
			case err != nil:
				out.Fail(ctx, pipeline.NewMessage(nil, nil), pipeline.WithReason(pipeline.ReasonInvalidPayload, err))
			case last != nil:
				_ = out.Send(ctx, pipeline.NewMessage(last, nil))
			}
			return nil
		case errors.Is(err, ErrLineTooLong):
			if send() != nil {
				return nil
			}
			out.Fail(ctx, pipeline.NewMessage(nil, nil), pipeline.WithReason(pipeline.ReasonInvalidPayload, err))
			continue
		case ctx.Err() != nil && errors.Is(err, os.ErrDeadlineExceeded):
			_ = send()
			return nil
		default:
			_ = send()
			return err
		}
		batch = append(batch, pipeline.NewMessage(line, nil))
		if len(batch) < lineBatch && lr.ready() {
			continue
		}
		if send() != nil {
			return nil
		}
	}
}

// lineBatch bounds the lines readLines hands on together.
const lineBatch = 64

// ready reports whether a complete, non-blank line is already buffered, so
// that next returns it without reading.
func (l *lineReader) ready() bool {
	b, _ := l.r.Peek(l.r.Buffered())
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return false
		}
		if len(bytes.TrimSpace(b[:i])) > 0 {
			return true
		}
		b = b[i+1:]
	}
}
