// Package gostreams connects pipe pipelines with github.com/reugn/go-streams:
// a pipeline can read from a go-streams Outlet ([Source]), write into a
// go-streams Sink ([Sink]), or stand in the middle of a go-streams graph as
// a streams.Flow ([Flow]).
//
// go-streams has no acknowledgements: an element counts as delivered once
// the next go-streams component has received it from the channel.
package gostreams

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/reugn/go-streams"
	"github.com/reugn/go-streams/flow"

	"github.com/pipe-dsl/pipe/pipeline"
)

// Source returns a pipeline source that reads the elements of o until o's
// channel closes. Elements that are []byte or string become message bodies
// as they are; *pipeline.Message elements pass through; anything else is
// encoded as JSON.
func Source(o streams.Outlet) pipeline.Source { return source{o.Out()} }

type source struct{ in <-chan any }

func (s source) Read(ctx context.Context, out pipeline.Outlet) error {
	for {
		var v any
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-s.in:
			if !ok {
				return nil
			}
			v = e
		}
		m, err := message(v)
		if err != nil {
			out.Fail(ctx, pipeline.NewMessage(fmt.Append(nil, v), nil), pipeline.WithReason(pipeline.ReasonInvalidPayload, err))
			continue
		}
		if out.Send(ctx, m) != nil {
			return nil
		}
	}
}

func message(v any) (*pipeline.Message, error) {
	switch v := v.(type) {
	case *pipeline.Message:
		return v, nil
	case []byte:
		return pipeline.NewMessage(v, nil), nil
	case string:
		return pipeline.NewMessage([]byte(v), nil), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("go-streams element %T: %w", v, err)
	}
	return pipeline.NewMessage(b, nil), nil
}

// Sink returns a pipeline sink that sends every message body ([]byte; each
// member of a batch in turn) to s. When the pipeline closes the sink it
// closes s's input and waits for s to complete.
func Sink(s streams.Sink) pipeline.Sink { return &sink{in: s.In(), done: s.AwaitCompletion} }

type sink struct {
	in   chan<- any
	done func()
	once sync.Once
}

func (s *sink) Write(ctx context.Context, m *pipeline.Message) error {
	if b := m.Batch(); b != nil {
		for _, member := range b {
			if err := s.send(ctx, member.Body); err != nil {
				return err
			}
		}
		return nil
	}
	return s.send(ctx, m.Body)
}

func (s *sink) send(ctx context.Context, body []byte) error {
	select {
	case s.in <- body:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *sink) Close(context.Context) error {
	s.once.Do(func() {
		close(s.in)
		if s.done != nil {
			s.done()
		}
	})
	return nil
}

// Flow is a streams.Flow backed by a pipeline: elements sent to In enter
// the pipeline through its source, and the bodies its sink accepts come out
// of Out as []byte. Closing In drains the pipeline and then closes Out.
type Flow struct {
	in   chan any
	out  chan any
	done chan struct{}
	err  error
}

var _ streams.Flow = (*Flow)(nil)

// NewFlow builds a pipeline with connect, handing it the source and sink
// that are the flow's ends, and runs it until In is closed or ctx is
// cancelled. Read the result with Err after Out is closed.
func NewFlow(ctx context.Context, connect func(src pipeline.Source, sink pipeline.Sink) (*pipeline.Pipeline, error)) (*Flow, error) {
	f := &Flow{in: make(chan any), out: make(chan any), done: make(chan struct{})}
	p, err := connect(source{f.in}, &sink{in: f.out})
	if err != nil {
		return nil, err
	}
	go func() {
		defer close(f.done)
		f.err = p.Run(ctx) // the sink's Close closes out
	}()
	return f, nil
}

// In returns the flow's input channel; close it to finish the flow.
func (f *Flow) In() chan<- any { return f.in }

// Out returns the flow's output channel of message bodies.
func (f *Flow) Out() <-chan any { return f.out }

// Via streams the flow's output into next and returns next.
func (f *Flow) Via(next streams.Flow) streams.Flow {
	flow.DoStream(f, next)
	return next
}

// To streams the flow's output into s and blocks until s completes.
func (f *Flow) To(s streams.Sink) {
	flow.DoStream(f, s)
	s.AwaitCompletion()
}

// Err waits for the pipeline to finish and returns Run's error.
func (f *Flow) Err() error {
	<-f.done
	return f.err
}
