package pipetest

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
	"github.com/pipe-dsl/pipe/resilience"
)

// The transitions hook reads the resilience package's state-change log;
// this pins that contract.
func TestTransitionsRecordsBreakerStateChanges(t *testing.T) {
	clock := pipelinetest.NewFakeClock(time.Unix(0, 0))
	tr := newTransitions("p")
	b, err := resilience.NewBreaker(resilience.BreakerConfig{
		Name: "p/out", FailureThreshold: 1, RecoveryTimeout: time.Second, OnOpen: resilience.DeadLetter,
	}, clock, slog.New(tr))
	if err != nil {
		t.Fatal(err)
	}
	fail := true
	call := b.Wrap(func(ctx context.Context, m *pipeline.Message) (*pipeline.Message, error) {
		if fail {
			return nil, errors.New("down")
		}
		return m, nil
	})
	m := pipeline.NewMessage([]byte("{}"), nil)
	call(context.Background(), m)
	clock.Advance(time.Second)
	fail = false
	call(context.Background(), m)
	if got, want := tr.of("out"), []string{"open", "half_open", "closed"}; !slices.Equal(got, want) {
		t.Errorf("transitions of out = %v, want %v", got, want)
	}
}

func TestRecorderCountsFlushReasonsOfBatches(t *testing.T) {
	r := &recorder{clock: pipeline.SystemClock}
	batch := pipeline.NewBatch([]*pipeline.Message{pipeline.NewMessage([]byte("1"), nil), pipeline.NewMessage([]byte("2"), nil)})
	batch.Meta = map[string]string{flushReasonMeta: "size"}
	if err := r.Write(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if err := r.Write(context.Background(), pipeline.NewMessage([]byte("3"), nil)); err != nil {
		t.Fatal(err)
	}
	if got := r.flushReasons(); !slices.Equal(got, []string{"size"}) {
		t.Errorf("flushReasons() = %v, want [size]", got)
	}
	if got := len(r.bodies()); got != 3 {
		t.Errorf("bodies() has %d, want 3 (batch members, then the single message)", got)
	}
}

func TestDiffMarksMissingAndExtraLines(t *testing.T) {
	want, got := []string{"a", "b", "c"}, []string{"a", "x", "c", "d"}
	out := diff(want, got, func(i, j int) bool { return want[i] == got[j] })
	const expect = "      a\n    - b\n    + x\n      c\n    + d\n"
	if out != expect {
		t.Errorf("diff =\n%s\nwant\n%s", out, expect)
	}
}
