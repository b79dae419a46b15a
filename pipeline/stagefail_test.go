package pipeline_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

// failingStage acks the first n messages, then fails (as a window stage
// fenced by a newer owner of its state does) without reading more.
type failingStage struct {
	n   int
	err error
}

func (s *failingStage) Run(_ context.Context, in <-chan *pipeline.Message, _ pipeline.Outlet) error {
	for range s.n {
		m, ok := <-in
		if !ok {
			return nil
		}
		m.Ack()
	}
	return s.err
}

// countingSource sends messages until stopped, counting each it made and
// each ack and nack.
type countingSource struct {
	mu                sync.Mutex
	made, acks, nacks int
}

func (c *countingSource) Read(ctx context.Context, out pipeline.Outlet) error {
	for {
		m := pipeline.NewMessage([]byte("m"), func(err error) {
			c.mu.Lock()
			defer c.mu.Unlock()
			if err != nil {
				c.nacks++
			} else {
				c.acks++
			}
		})
		c.mu.Lock()
		c.made++
		c.mu.Unlock()
		if out.Send(ctx, m) != nil {
			return nil
		}
	}
}

func TestGivenAStageThatFailsMidRunThenTheRunStopsWithItsErrorAndEveryMessageReadIsSettled(t *testing.T) {
	// Given an endless source into a stage that fails after three messages,
	src := &countingSource{}
	errFenced := errors.New("fenced")
	p := linear(t, src, &failingStage{n: 3, err: errFenced}, &pipelinetest.Sink{}, pipeline.NodeOptions{Buffer: 4})
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background()) }()
	// when the stage fails, then the run ends on its own (the source would
	// otherwise block forever on an input nobody reads) with the stage's
	// error,
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the run never ended after its stage failed")
	}
	if !errors.Is(err, errFenced) {
		t.Errorf("Run = %v, want the stage's error", err)
	}
	// and every message the source made was acked (the three the stage
	// took) or nacked (the rest, for redelivery).
	src.mu.Lock()
	defer src.mu.Unlock()
	if src.acks != 3 || src.acks+src.nacks != src.made {
		t.Errorf("made %d, acked %d, nacked %d; want 3 acked and the rest nacked", src.made, src.acks, src.nacks)
	}
}
