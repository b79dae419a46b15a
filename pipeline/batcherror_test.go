package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

// batchAll is a stage that emits everything it reads as one batch.
type batchAll struct{}

func (batchAll) Run(ctx context.Context, in <-chan *pipeline.Message, out pipeline.Outlet) error {
	var held []*pipeline.Message
	for m := range in {
		held = append(held, m)
	}
	return out.Send(ctx, pipeline.NewBatch(held))
}

// refusingSink writes a batch's members except those refuse names, and
// reports those in a BatchError.
type refusingSink struct {
	pipelinetest.Sink
	refuse map[string]error
}

func (s *refusingSink) Write(ctx context.Context, m *pipeline.Message) error {
	var accepted []*pipeline.Message
	errs := make([]error, len(m.Batch()))
	for i, x := range m.Batch() {
		if errs[i] = s.refuse[string(x.Body)]; errs[i] == nil {
			accepted = append(accepted, x)
		}
	}
	if err := s.Sink.Write(ctx, pipeline.NewBatch(accepted)); err != nil {
		return err
	}
	return &pipeline.BatchError{Errs: errs}
}

func runRefusing(t *testing.T, refuse map[string]error, withDLQ bool) (*pipelinetest.Source, *refusingSink, *pipelinetest.Sink) {
	t.Helper()
	src := pipelinetest.NewSource(`{"n":1}`, `{"n":2}`, `{"n":3}`, `{"n":4}`)
	sink := &refusingSink{refuse: refuse}
	p := linear(t, src, batchAll{}, sink, pipeline.NodeOptions{})
	var dlq *pipelinetest.Sink
	if withDLQ {
		dlq = &pipelinetest.Sink{}
		must(t, p.SetDeadLetter("test", dlq, pipeline.NodeOptions{}))
	}
	must(t, p.Run(context.Background()))
	return src, sink, dlq
}

func TestOnlyTheMembersASinkRefusedAreDeadLetteredEachWithItsOwnError(t *testing.T) {
	refuse := map[string]error{
		`{"n":2}`: errors.New(`duplicate key value violates unique constraint "orders_pkey"`),
		`{"n":4}`: pipeline.WithReason(pipeline.ReasonExpression, errors.New(`column "id": no such key: id`)),
	}
	src, sink, dlq := runRefusing(t, refuse, true)
	if got := sink.Bodies(); !slices.Equal(got, []string{`{"n":1}`, `{"n":3}`}) {
		t.Errorf("sink wrote %v, want members 1 and 3", got)
	}
	var envs []pipeline.DeadLetter
	for _, b := range dlq.Bodies() {
		var env pipeline.DeadLetter
		must(t, json.Unmarshal([]byte(b), &env))
		envs = append(envs, env)
	}
	if len(envs) != 2 {
		t.Fatalf("dead letters = %+v, want the 2 refused members", envs)
	}
	for i, want := range []struct{ payload, reason, err string }{
		{`{"n":2}`, pipeline.ReasonSinkError, refuse[`{"n":2}`].Error()},
		{`{"n":4}`, pipeline.ReasonExpression, refuse[`{"n":4}`].Error()},
	} {
		if e := envs[i]; string(e.Payload) != want.payload || e.Reason != want.reason || e.Error != want.err {
			t.Errorf("dead letter %d = payload %s, reason %q, error %q; want %s, %q, %q",
				i, e.Payload, e.Reason, e.Error, want.payload, want.reason, want.err)
		}
	}
	if got := sorted(src.Acked()); !slices.Equal(got, []int{0, 1, 2, 3}) {
		t.Errorf("acked %v, want all 4: written or dead-lettered", got)
	}
}

func TestABatchErrorWithoutADeadLetterSinkNacksTheWholeBatch(t *testing.T) {
	src, _, _ := runRefusing(t, map[string]error{`{"n":2}`: errors.New("refused")}, false)
	if n := len(src.Nacked()); n != 4 {
		t.Errorf("nacked %d, want all 4: members are acked together", n)
	}
}

func TestABatchErrorRefusingNothingIsASuccess(t *testing.T) {
	src, sink, dlq := runRefusing(t, nil, true)
	if len(sink.Bodies()) != 4 || len(dlq.Bodies()) != 0 || len(src.Acked()) != 4 {
		t.Errorf("sink %v, dead letters %v, acked %v: want 4 written, none dead-lettered, 4 acked",
			sink.Bodies(), dlq.Bodies(), src.Acked())
	}
}

// Given a sink that writes 2 of a batch of 4 and refuses 2, the node's
// counters show the members: 2 out, 2 failed (and dead-lettered), not one
// failed batch.
func TestAPartlyRefusedBatchCountsItsMembers(t *testing.T) {
	for _, withDLQ := range []bool{true, false} {
		src := pipelinetest.NewSource(`{"n":1}`, `{"n":2}`, `{"n":3}`, `{"n":4}`)
		sink := &refusingSink{refuse: map[string]error{`{"n":2}`: errors.New("refused"), `{"n":4}`: errors.New("refused")}}
		p := linear(t, src, batchAll{}, sink, pipeline.NodeOptions{})
		if withDLQ {
			must(t, p.SetDeadLetter("test", &pipelinetest.Sink{}, pipeline.NodeOptions{}))
		}
		must(t, p.Run(context.Background()))
		var got pipeline.NodeStats
		for _, s := range p.Stats() {
			if s.Role == pipeline.RoleSink {
				got = s
			}
		}
		want := pipeline.NodeStats{Out: 2, Failed: 2}
		if withDLQ {
			want.DeadLettered = 2
		} else {
			want.Nacked = 2
		}
		if got.Out != want.Out || got.Failed != want.Failed || got.DeadLettered != want.DeadLettered || got.Nacked != want.Nacked {
			t.Errorf("dead-letter sink %v: sink out %d failed %d dead-lettered %d nacked %d, want %d %d %d %d", withDLQ,
				got.Out, got.Failed, got.DeadLettered, got.Nacked, want.Out, want.Failed, want.DeadLettered, want.Nacked)
		}
	}
}
