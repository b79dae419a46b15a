package stages

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/expr"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

// batchRig runs a batch stage on a fake clock. in is unbuffered: when a
// send returns, the stage has taken the message and will finish adding it
// before it looks at its timer.
type batchRig struct {
	t      *testing.T
	b      *batch
	clock  *pipelinetest.FakeClock
	in     chan *pipeline.Message
	out    *recOutlet
	acks   *ackLog
	cancel context.CancelFunc
	done   chan error
}

func startBatch(t *testing.T, cfg batchConfig) *batchRig {
	t.Helper()
	if cfg.MaxKeys == 0 {
		cfg.MaxKeys = 1000
	}
	clock := pipelinetest.NewFakeClock(time.Unix(0, 0))
	v, err := newBatch(&cfg, component.Env{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	r := &batchRig{t: t, b: v.(*batch), clock: clock, in: make(chan *pipeline.Message),
		out: newRecOutlet(), acks: newAckLog(), cancel: func() {}, done: make(chan error, 1)}
	t.Cleanup(func() {
		r.cancel()
		r.close()
	})
	return r
}

func (r *batchRig) run() {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- r.b.Run(ctx, r.in, r.out) }()
}

func (r *batchRig) send(bodies ...string) {
	for _, b := range bodies {
		r.in <- r.acks.msg(b)
	}
}

// close ends the input (a soft stop) and waits for Run, once.
func (r *batchRig) close() error {
	if r.in == nil {
		return nil
	}
	close(r.in)
	r.in = nil
	return <-r.done
}

// flushed receives the next batch and checks its members and reason.
func (r *batchRig) flushed(reason string, members ...string) *pipeline.Message {
	r.t.Helper()
	s := r.out.next(r.t)
	if s.err != nil || s.drop != "" || s.m.Batch() == nil {
		r.t.Fatalf("got %+v, want a batch", s)
	}
	got := bodiesOf(s.m)
	if !slices.Equal(got, members) || s.m.Meta[MetaFlushReason] != reason {
		r.t.Fatalf("flushed %q (reason %q), want %q (reason %q)", got, s.m.Meta[MetaFlushReason], members, reason)
	}
	return s.m
}

func TestBatchMaxWaitCountsFromTheFirstMessageUnderASteadyTrickle(t *testing.T) {
	// Given max_wait 10s and a message every 5s (max_wait/2),
	r := startBatch(t, batchConfig{Size: 100, MaxWait: 10 * time.Second})
	r.run()
	for round := range 3 {
		first := r.clock.Now()
		r.send("a")
		r.clock.WaitTimers(1) // the batch's timer is armed
		r.clock.Advance(5 * time.Second)
		r.send("b")
		r.clock.Advance(5 * time.Second)
		// then each batch flushes 10s after its first message, not 10s
		// after the last one.
		r.flushed(FlushWait, "a", "b")
		if got := r.clock.Now().Sub(first); got != 10*time.Second {
			t.Fatalf("round %d: flushed %s after the first message, want 10s", round, got)
		}
	}
	if got := r.b.Stats()[FlushWait]; got != 3 {
		t.Fatalf("Stats()[wait] = %d, want 3", got)
	}
}

func TestBatchFlushesAtSize(t *testing.T) {
	r := startBatch(t, batchConfig{Size: 3, MaxWait: time.Hour})
	r.run()
	r.send("a", "b", "c", "d")
	r.flushed(FlushSize, "a", "b", "c")
	r.send("e", "f")
	r.flushed(FlushSize, "d", "e", "f")
	if s := r.b.Stats(); s[FlushSize] != 2 || s[FlushWait] != 0 {
		t.Fatalf("Stats() = %v", s)
	}
	fs := r.b.Report()
	if size, wait := figure(fs, "flushes", "size"), figure(fs, "flushes", "wait"); size != 2 || wait != 0 {
		t.Fatalf("Report() flushes{size} = %v, {wait} = %v; want 2, 0 (%+v)", size, wait, fs)
	}
}

// figure returns the value of the figure named name with label value lv in
// fs, or -1.
func figure(fs []pipeline.Figure, name, lv string) float64 {
	for _, f := range fs {
		if f.Name == name && f.LabelValue == lv {
			return f.Value
		}
	}
	return -1
}

func TestBatchFlushesBeforePassingMaxBytes(t *testing.T) {
	r := startBatch(t, batchConfig{MaxBytes: 10})
	r.run()
	r.send("aaaa", "bbbb", "cccc") // 12 bytes would pass 10
	r.flushed(FlushBytes, "aaaa", "bbbb")
	r.send("dddddd") // 4+6 reaches 10
	r.flushed(FlushBytes, "cccc", "dddddd")
	r.send("a-body-of-twenty-chr")
	r.flushed(FlushBytes, "a-body-of-twenty-chr") // alone, as it is larger than max_bytes
	if got := r.b.Stats()[FlushBytes]; got != 3 {
		t.Fatalf("Stats()[bytes] = %d, want 3", got)
	}
}

func TestBatchFlushesThePartialBatchAtOnceOnShutdown(t *testing.T) {
	r := startBatch(t, batchConfig{Size: 100, MaxWait: time.Hour})
	r.run()
	r.send("a", "b")
	if err := r.close(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	r.flushed(FlushShutdown, "a", "b")
	if n := r.clock.Timers(); n != 0 {
		t.Fatalf("%d timers armed after Run returned", n)
	}
}

func TestBatchMaxInFlightHoldsTheNextFlushUntilAnAck(t *testing.T) {
	r := startBatch(t, batchConfig{Size: 2, MaxInFlight: 1})
	waiting := make(chan struct{}, 1)
	r.b.waiting = func() { waiting <- struct{}{} }
	r.run()
	r.send("a", "b")
	first := r.flushed(FlushSize, "a", "b")
	r.send("c", "d")
	<-waiting // the second flush waits for a slot
	r.out.none(t)
	first.Ack()
	r.flushed(FlushSize, "c", "d")
	if got := r.acks.outcome("a"); got != "acked" {
		t.Fatalf("a: %s, want acked with its batch", got)
	}
}

func TestBatchMembersAreResolvedOnlyWithTheirBatch(t *testing.T) {
	r := startBatch(t, batchConfig{Size: 2})
	r.run()
	r.send("a", "b", "c", "d")
	ok := r.flushed(FlushSize, "a", "b")
	bad := r.flushed(FlushSize, "c", "d")
	for _, b := range []string{"a", "b", "c", "d"} {
		if got := r.acks.outcome(b); got != "pending" {
			t.Fatalf("%s: %s before its batch was resolved", b, got)
		}
	}
	ok.Ack()
	bad.Nack(errors.New("sink down"))
	want := map[string]string{"a": "acked", "b": "acked", "c": "nacked: sink down", "d": "nacked: sink down"}
	for b, w := range want {
		if got := r.acks.outcome(b); got != w {
			t.Errorf("%s: %s, want %s", b, got, w)
		}
	}
}

func TestBatchPerKeyIsBoundedByMaxKeys(t *testing.T) {
	key, err := expr.Compile("msg.k")
	if err != nil {
		t.Fatal(err)
	}
	r := startBatch(t, batchConfig{Size: 10, MaxWait: 10 * time.Second, Key: key, MaxKeys: 2})
	r.run()
	r.send(`{"k":"a","n":1}`)
	r.clock.WaitTimers(1)
	r.clock.Advance(time.Second)
	// Each send also proves the stage finished the one before, which
	// read the clock if it opened a batch.
	r.send(`{"k":"b","n":2}`, `{"k":"a","n":3}`)
	r.clock.Advance(time.Second)
	r.send(`{"k":"c","n":4}`) // a third key: the oldest batch (a) goes
	m := r.flushed(FlushKeys, `{"k":"a","n":1}`, `{"k":"a","n":3}`)
	r.send(`{"k":"c","n":5}`)
	if m.Meta[MetaBatchKey] != "a" {
		t.Fatalf("meta %v, want batch.key a", m.Meta)
	}
	r.clock.Advance(9 * time.Second) // t=11s: b's max_wait is over
	m = r.flushed(FlushWait, `{"k":"b","n":2}`)
	if m.Meta[MetaBatchKey] != "b" {
		t.Fatalf("meta %v, want batch.key b", m.Meta)
	}
	r.out.none(t)
	r.clock.Advance(time.Second) // t=12s: c's
	r.flushed(FlushWait, `{"k":"c","n":4}`, `{"k":"c","n":5}`)
}

func TestBatchSendsMessagesWithoutAKeyToTheDeadLetterPath(t *testing.T) {
	key, err := expr.Compile("msg.k")
	if err != nil {
		t.Fatal(err)
	}
	r := startBatch(t, batchConfig{Size: 1, Key: key})
	r.run()
	r.send("not json")
	s := r.out.next(t)
	if s.err == nil || pipeline.Reason(s.err) != pipeline.ReasonInvalidPayload {
		t.Fatalf("got %+v, want a failure with reason invalid_payload", s)
	}
}

func TestBatchHardStopNacksWhatItHolds(t *testing.T) {
	r := startBatch(t, batchConfig{Size: 100})
	r.run()
	r.send("a", "b")
	r.cancel()
	err := <-r.done
	r.in = nil
	if !errors.Is(err, pipeline.ErrAbandoned) {
		t.Fatalf("Run = %v, want ErrAbandoned", err)
	}
	for _, b := range []string{"a", "b"} {
		if got := r.acks.outcome(b); got != "nacked: "+pipeline.ErrAbandoned.Error() {
			t.Fatalf("%s: %s", b, got)
		}
	}
}

func TestBatchHardStopWhileWaitingForASlotNacksTheBatch(t *testing.T) {
	r := startBatch(t, batchConfig{Size: 1, MaxInFlight: 1})
	waiting := make(chan struct{}, 1)
	r.b.waiting = func() { waiting <- struct{}{} }
	r.run()
	r.send("a")
	r.flushed(FlushSize, "a")
	r.send("b")
	<-waiting
	r.cancel()
	<-r.done
	r.in = nil
	if got := r.acks.outcome("b"); got == "pending" || got == "acked" {
		t.Fatalf("b: %s, want nacked", got)
	}
}

func TestBatchNeedsAFlushCondition(t *testing.T) {
	if _, err := newBatch(&batchConfig{MaxKeys: 1}, component.Env{}); err == nil {
		t.Fatal("newBatch with no size, max_bytes or max_wait succeeded")
	}
}
