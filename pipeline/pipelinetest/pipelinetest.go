package pipelinetest

import (
	"context"
	"sync"

	"github.com/pipe-dsl/pipe/pipeline"
)

// Source sends Bodies in order, then returns. It records every ack.
type Source struct {
	Bodies [][]byte

	mu    sync.Mutex
	acked []int
	nacks map[int]error
	sent  int
	done  chan struct{}
}

var _ pipeline.Source = (*Source)(nil)

// NewSource returns a source of the given bodies.
func NewSource(bodies ...string) *Source {
	s := &Source{nacks: map[int]error{}}
	for _, b := range bodies {
		s.Bodies = append(s.Bodies, []byte(b))
	}
	return s
}

func (s *Source) Read(ctx context.Context, out pipeline.Outlet) error {
	for i, b := range s.Bodies {
		if ctx.Err() != nil {
			return nil
		}
		m := pipeline.NewMessage(b, func(err error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			if err != nil {
				s.nacks[i] = err
			} else {
				s.acked = append(s.acked, i)
			}
		})
		if out.Send(ctx, m) != nil {
			return nil
		}
		s.mu.Lock()
		s.sent++
		s.mu.Unlock()
	}
	return nil
}

// Sent returns how many messages Send accepted.
func (s *Source) Sent() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent
}

// Acked returns the indexes of acked messages, in ack order.
func (s *Source) Acked() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.acked...)
}

// Nacked returns the nacked message indexes with their errors.
func (s *Source) Nacked() map[int]error {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[int]error, len(s.nacks))
	for k, v := range s.nacks {
		out[k] = v
	}
	return out
}

// Sink records what it is given. If Fail is set, its error is returned for
// a message instead of recording it. If Gate is set, every Write first
// waits for a value on it (or ctx).
type Sink struct {
	Fail func(m *pipeline.Message) error
	Gate chan struct{}
	// Entered, if set, receives one value as each Write starts.
	Entered chan struct{}

	mu   sync.Mutex
	got  [][]byte
	msgs int
}

var _ pipeline.Sink = (*Sink)(nil)

func (s *Sink) Write(ctx context.Context, m *pipeline.Message) error {
	if s.Entered != nil {
		select {
		case s.Entered <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if s.Gate != nil {
		select {
		case <-s.Gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if s.Fail != nil {
		if err := s.Fail(m); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs++
	if b := m.Batch(); b != nil {
		for _, x := range b {
			s.got = append(s.got, x.Body)
		}
		return nil
	}
	s.got = append(s.got, m.Body)
	return nil
}

// Bodies returns the bodies written so far (batch members flattened).
func (s *Sink) Bodies() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.got))
	for i, b := range s.got {
		out[i] = string(b)
	}
	return out
}

// Writes returns how many Write calls succeeded.
func (s *Sink) Writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.msgs
}

// ProcessorFunc adapts a function to pipeline.Processor.
type ProcessorFunc func(ctx context.Context, m *pipeline.Message) (*pipeline.Message, error)

func (f ProcessorFunc) Process(ctx context.Context, m *pipeline.Message) (*pipeline.Message, error) {
	return f(ctx, m)
}
