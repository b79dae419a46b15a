package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

// groupSource sends n numbered messages with pipeline.SendAll, in groups of
// group, and records how each one was resolved.
type groupSource struct {
	n, group int

	mu       sync.Mutex
	resolved map[int][]error // every resolution of message i
}

func (s *groupSource) Read(ctx context.Context, out pipeline.Outlet) error {
	for i := 0; i < s.n; i += s.group {
		var ms []*pipeline.Message
		for j := i; j < min(i+s.group, s.n); j++ {
			ms = append(ms, pipeline.NewMessage(fmt.Appendf(nil, "m%d", j), func(err error) {
				s.mu.Lock()
				defer s.mu.Unlock()
				if s.resolved == nil {
					s.resolved = map[int][]error{}
				}
				s.resolved[j] = append(s.resolved[j], err)
			}))
		}
		if err := pipeline.SendAll(ctx, out, ms); err != nil {
			return nil
		}
	}
	return nil
}

// outcomes returns how many messages were acked and nacked, failing t if
// one was resolved twice or, with all, not at all.
func (s *groupSource) outcomes(t *testing.T, all bool) (acks, nacks int) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.n {
		switch r := s.resolved[i]; {
		case len(r) > 1:
			t.Fatalf("message %d resolved %d times: %v", i, len(r), r)
		case len(r) == 0 && all:
			t.Fatalf("message %d never resolved", i)
		case len(r) == 1 && r[0] == nil:
			acks++
		case len(r) == 1:
			nacks++
		}
	}
	return acks, nacks
}

// sliceSink is a pipelinetest.Sink that is also a pipeline.SliceWriter,
// recording the size of every WriteSlice and refusing the bodies in refuse.
type sliceSink struct {
	pipelinetest.Sink
	refuse string // a body WriteSlice refuses, "" for none

	mu     sync.Mutex
	slices []int
}

func (s *sliceSink) WriteSlice(ctx context.Context, ms []*pipeline.Message) error {
	s.mu.Lock()
	s.slices = append(s.slices, len(ms))
	s.mu.Unlock()
	errs := make([]error, len(ms))
	refused := false
	for i, m := range ms {
		if string(m.Body) == s.refuse {
			errs[i], refused = errors.New("refused"), true
			continue
		}
		if err := s.Sink.Write(ctx, m); err != nil {
			return err
		}
	}
	if refused {
		return &pipeline.BatchError{Errs: errs}
	}
	return nil
}

func (s *sliceSink) sizes() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.slices)
}

func TestMessagesSentTogetherArriveInOrderAndAreAckedOneByOne(t *testing.T) {
	// Given a source handing on 150 messages at a time (more than a chain
	// holds) and a sink that writes slices,
	src := &groupSource{n: 1000, group: 150}
	sink := &sliceSink{}
	p := linear(t, src, process(upper), sink, pipeline.NodeOptions{})

	// when the pipeline runs,
	must(t, p.Run(context.Background()))

	// then every message arrives once, in order, and is acked,
	got := sink.Bodies()
	if len(got) != src.n {
		t.Fatalf("sink got %d messages, want %d", len(got), src.n)
	}
	for i, b := range got {
		if want := fmt.Sprintf("M%d", i); b != want {
			t.Fatalf("message %d = %q, want %q", i, b, want)
		}
	}
	if acks, _ := src.outcomes(t, true); acks != src.n {
		t.Fatalf("acked %d, want %d", acks, src.n)
	}
	// the sink was handed several messages per call, never more than a
	// chain holds (buffer 128: chains of 16),
	sizes := sink.sizes()
	if len(sizes) == 0 || slices.Max(sizes) > 16 {
		t.Fatalf("WriteSlice sizes = %v, want some, each at most 16", sizes)
	}
	// and every node counts messages, not chains.
	for _, name := range []string{"st", "out"} {
		s := statsOf(p, name)
		if s.In != int64(src.n) || s.Out != int64(src.n) || s.Queued != 0 {
			t.Fatalf("%s: in %d, out %d, queued %d; want %d, %d, 0", name, s.In, s.Out, s.Queued, src.n, src.n)
		}
	}
	if s := statsOf(p, "src"); s.Out != int64(src.n) || s.Acked != int64(src.n) {
		t.Fatalf("src: out %d, acked %d; want %d", s.Out, s.Acked, src.n)
	}
}

func TestASliceWriterRefusingOneMessageDeadLettersOnlyThatOne(t *testing.T) {
	src := &groupSource{n: 200, group: 200}
	sink := &sliceSink{refuse: "M7"}
	dlq := &pipelinetest.Sink{}
	p := linear(t, src, process(upper), sink, pipeline.NodeOptions{})
	must(t, p.SetDeadLetter("test", dlq, pipeline.NodeOptions{}))

	must(t, p.Run(context.Background()))

	if got := len(sink.Bodies()); got != src.n-1 {
		t.Fatalf("sink wrote %d, want %d", got, src.n-1)
	}
	if got := dlq.Bodies(); len(got) != 1 || !strings.Contains(got[0], "M7") {
		t.Fatalf("dead letters = %v, want the one for M7", got)
	}
	if acks, _ := src.outcomes(t, true); acks != src.n {
		t.Fatalf("acked %d, want %d (a dead-lettered message is acked)", acks, src.n)
	}
	if s := statsOf(p, "out"); s.Out != int64(src.n-1) || s.Failed != 1 || s.DeadLettered != 1 {
		t.Fatalf("out: out %d, failed %d, dead-lettered %d; want %d, 1, 1", s.Out, s.Failed, s.DeadLettered, src.n-1)
	}
}

func TestTheHardStopNacksEveryMessageOfAChainInFlightOnce(t *testing.T) {
	// Given chains filling every buffer in front of a sink that never
	// accepts,
	src := &groupSource{n: 5000, group: 64} // whole chains of 16
	sink := &sliceSink{Sink: pipelinetest.Sink{Gate: make(chan struct{})}}
	p := linear(t, src, process(upper), sink, pipeline.NodeOptions{})
	done := make(chan error)
	go func() { done <- p.Run(context.Background()) }()
	eventually(t, "buffers full", func() bool {
		return statsOf(p, "out").Queued == pipeline.DefaultBuffer && statsOf(p, "st").Queued == pipeline.DefaultBuffer
	})

	// when the pipeline is killed,
	p.Kill()
	err := <-done

	// then every message read is nacked exactly once, none acked, and all
	// are reported: in flight at a node, or refused by the source's
	// blocked SendAll (at most one group).
	var ab *pipeline.AbandonedError
	if !errors.As(err, &ab) {
		t.Fatalf("Run = %v, want an AbandonedError", err)
	}
	acks, nacks := src.outcomes(t, false)
	total := 0
	for _, n := range ab.InFlight {
		total += n
	}
	if acks != 0 || nacks == 0 || ab.Sources != nacks || total > nacks || nacks-total > src.group {
		t.Fatalf("acked %d, nacked %d, reported %d source messages, in flight %v (total %d); want 0 acked, all nacked reported",
			acks, nacks, ab.Sources, ab.InFlight, total)
	}
}
