package stages

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

func newTestDedupe(t *testing.T, clock pipeline.Clock, set func(c *dedupeConfig)) *dedupe {
	t.Helper()
	k, ok := component.Default.Lookup(pipeline.RoleStage, "dedupe")
	if !ok {
		t.Fatal("dedupe is not registered")
	}
	c := k.NewConfig().(*dedupeConfig)
	c.Key = compile(t, "msg.id")
	set(c)
	v, err := newDedupe(c, component.Env{Clock: clock})
	if err != nil {
		t.Fatalf("newDedupe: %v", err)
	}
	return v.(*dedupe)
}

// acks is a source message whose resolution is recorded.
type acks struct{ got []error }

func (a *acks) msg(body string) *pipeline.Message {
	return pipeline.NewMessage([]byte(body), func(err error) { a.got = append(a.got, err) })
}

func id(n int) string { return fmt.Sprintf(`{"id":%d}`, n) }

func isDuplicateDrop(err error) bool {
	var drop *pipeline.DropError
	return errors.As(err, &drop) && drop.Reason == "duplicate"
}

func TestDedupeDropsKeysSeenWithinTTLOfTheFirstSighting(t *testing.T) {
	clock := pipelinetest.NewFakeClock(t0)
	d := newTestDedupe(t, clock, func(c *dedupeConfig) { c.TTL = time.Minute })
	for i, s := range []struct {
		advance time.Duration
		id      int
		dup     bool
	}{
		{0, 1, false},
		{0, 2, false},
		{10 * time.Second, 1, true},
		{49 * time.Second, 1, true}, // 59s after the first sighting
		{time.Second, 1, false},     // 60s: forgotten, passes and is remembered again
		{0, 2, false},               // also 60s after its first sighting
		{59 * time.Second, 1, true},
		{time.Second, 1, false},
	} {
		clock.Advance(s.advance)
		out, err := d.Process(context.Background(), msg(id(s.id)))
		if s.dup != isDuplicateDrop(err) || s.dup != (out == nil) {
			t.Errorf("step %d: Process(id %d at t0+%v) = %v, %v; want duplicate %v", i, s.id, clock.Now().Sub(t0), out, err, s.dup)
		}
		if out != nil {
			out.Ack()
		}
	}
	if s := d.Stats(); s.Passed != 5 || s.Duplicates != 3 {
		t.Errorf("Stats() = %+v, want Passed 5, Duplicates 3", s)
	}
	fs := d.Report()
	if hits, misses, exp := figure(fs, "hits", ""), figure(fs, "misses", ""), figure(fs, "expirations", ""); hits != 3 || misses != 5 || exp < 1 {
		t.Errorf("Report() hits, misses, expirations = %v, %v, %v; want 3, 5, at least 1 (%+v)", hits, misses, exp, fs)
	}
}

func TestDedupeForgetsAKeyWhenItsMessageIsNacked(t *testing.T) {
	// Given a message that passed and was nacked downstream,
	// when the broker redelivers it, then it passes again: a nack must not
	// turn a redelivery into a "duplicate" and lose it.
	d := newTestDedupe(t, pipelinetest.NewFakeClock(t0), func(*dedupeConfig) {})
	var first acks
	out, err := d.Process(context.Background(), first.msg(id(7)))
	if out == nil || err != nil {
		t.Fatalf("first sighting: Process = %v, %v; want passed", out, err)
	}
	if _, err := d.Process(context.Background(), msg(id(7))); !isDuplicateDrop(err) {
		t.Fatalf("while in flight: Process = %v, want a duplicate drop", err)
	}
	boom := errors.New("sink down")
	out.Nack(boom)
	if len(first.got) != 1 || !errors.Is(first.got[0], boom) {
		t.Fatalf("input resolved with %v, want the nack's error", first.got)
	}
	var again acks
	out, err = d.Process(context.Background(), again.msg(id(7)))
	if out == nil || err != nil {
		t.Fatalf("redelivery after nack: Process = %v, %v; want passed", out, err)
	}
	out.Ack()
	if len(again.got) != 1 || again.got[0] != nil {
		t.Errorf("redelivery resolved with %v, want one ack", again.got)
	}
	if _, err := d.Process(context.Background(), msg(id(7))); !isDuplicateDrop(err) {
		t.Errorf("after an ack: Process = %v, want a duplicate drop", err)
	}
	if s := d.Stats(); s.Forgotten != 1 {
		t.Errorf("Stats().Forgotten = %d, want 1", s.Forgotten)
	}
}

func TestDedupeNackDoesNotForgetALaterSighting(t *testing.T) {
	clock := pipelinetest.NewFakeClock(t0)
	d := newTestDedupe(t, clock, func(c *dedupeConfig) { c.TTL = time.Minute })
	old, _ := d.Process(context.Background(), msg(id(1)))
	clock.Advance(time.Minute) // the first sighting expires
	fresh, _ := d.Process(context.Background(), msg(id(1)))
	if old == nil || fresh == nil {
		t.Fatalf("both sightings should pass: %v, %v", old, fresh)
	}
	old.Nack(nil) // late nack of the expired sighting
	if _, err := d.Process(context.Background(), msg(id(1))); !isDuplicateDrop(err) {
		t.Errorf("Process after a stale nack = %v, want a duplicate drop (the fresh sighting is remembered)", err)
	}
	if s := d.Stats(); s.Forgotten != 0 {
		t.Errorf("Stats().Forgotten = %d, want 0", s.Forgotten)
	}
}

func TestDedupeKeepsTheMessageIntact(t *testing.T) {
	d := newTestDedupe(t, pipelinetest.NewFakeClock(t0), func(*dedupeConfig) {})
	type key struct{}
	var a acks
	in := a.msg(`{"id": 3, "x": [1, 2]}`)
	in.Meta = map[string]string{"h": "v"}
	in.Created = t0
	in.SetContext(context.WithValue(context.Background(), key{}, "span"))
	in.SetDecoded(map[string]any{"id": int64(3), "x": []any{int64(1), int64(2)}})
	out, err := d.Process(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if string(out.Body) != string(in.Body) || out.Meta["h"] != "v" || !out.Created.Equal(t0) || out.Context().Value(key{}) != "span" {
		t.Errorf("out = body %s meta %v created %v; want the input's body, meta, created time and context", out.Body, out.Meta, out.Created)
	}
	if got, ok := out.Decoded().(map[string]any); !ok || got["id"] != int64(3) {
		t.Errorf("out.Decoded() = %v, want the input's decoded body", out.Decoded())
	}
	// A fan-out copy shares the acknowledgement: the input is acked once,
	// after both.
	c := out.Copy()
	out.Ack()
	if len(a.got) != 0 {
		t.Fatalf("input resolved before the copy: %v", a.got)
	}
	c.Ack()
	if len(a.got) != 1 || a.got[0] != nil {
		t.Errorf("input resolved with %v, want one ack", a.got)
	}
}

func TestDedupeRejectsBatchesAndBadKeys(t *testing.T) {
	d := newTestDedupe(t, pipelinetest.NewFakeClock(t0), func(*dedupeConfig) {})
	if _, err := d.Process(context.Background(), pipeline.NewBatch([]*pipeline.Message{msg(id(1))})); pipeline.Reason(err) != pipeline.ReasonInvalidPayload {
		t.Errorf("Process(batch) = %v, want an invalid_payload error", err)
	}
	if _, err := d.Process(context.Background(), msg(`{"no_id": 1}`)); pipeline.Reason(err) != pipeline.ReasonExpression {
		t.Errorf("Process(no id) = %v, want an expression_error", err)
	}
}

func TestDedupeStaysBoundedUnderAMillionDistinctKeys(t *testing.T) {
	n := 1_000_000
	if testing.Short() || raceEnabled {
		n = 20_000
	}
	const maxKeys = 1000
	d := newTestDedupe(t, pipelinetest.NewFakeClock(t0), func(c *dedupeConfig) { c.MaxKeys = maxKeys })
	now := t0
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range n {
		if i < 10_000 {
			out, err := d.Process(context.Background(), msg(id(i)))
			if out == nil {
				t.Fatalf("Process(id %d) = %v; want passed", i, err)
			}
			out.Ack()
			continue
		}
		d.seen.GetOrSet(fmt.Sprint(i), now, func() uint64 { return 0 })
	}
	if s := d.Stats(); s.Keys != maxKeys || s.Evictions != uint64(n-maxKeys) {
		t.Errorf("after %d keys: Stats() = %+v, want Keys %d, Evictions %d", n, s, maxKeys, n-maxKeys)
	}
	if ev := figure(d.Report(), "evictions", ""); ev != float64(n-maxKeys) {
		t.Errorf("Report() evictions = %v, want %d", ev, n-maxKeys)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 10<<20 {
		t.Errorf("heap grew by %d bytes for %d keys (max_keys %d), want < 10MiB", grew, n, maxKeys)
	}
}

func TestDedupePipelineAcksDuplicatesAndDeliversFirstSightings(t *testing.T) {
	defer goleak.VerifyNone(t)
	clock := pipelinetest.NewFakeClock(t0)
	d := newTestDedupe(t, clock, func(*dedupeConfig) {})
	src := pipelinetest.NewSource(id(1), id(2), id(1), id(3), id(2), id(1))
	out := &pipelinetest.Sink{}
	p := pipeline.New("test")
	p.Clock = clock
	for _, err := range []error{
		p.AddSource("src", "test", src),
		p.AddStage("dedupe", "dedupe", d, pipeline.NodeOptions{}),
		p.AddSink("out", "test", out, pipeline.NodeOptions{}),
		p.Connect("src", "", "dedupe"),
		p.Connect("dedupe", "", "out"),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := out.Bodies(), []string{id(1), id(2), id(3)}; !slices.Equal(got, want) {
		t.Errorf("sink got %v, want %v", got, want)
	}
	if got := src.Acked(); len(got) != 6 {
		t.Errorf("acked %v, want all 6", got)
	}
	if s := statsOf(p, "dedupe"); s.Dropped != 3 {
		t.Errorf("dedupe Dropped = %d, want 3", s.Dropped)
	}
}

func TestDedupePipelineLetsARedeliveryThroughAfterASinkFailure(t *testing.T) {
	defer goleak.VerifyNone(t)
	// Given no dead-letter sink and a sink failing the first write, the
	// first id 5 is nacked; its redelivery (the second id 5) must pass.
	clock := pipelinetest.NewFakeClock(t0)
	d := newTestDedupe(t, clock, func(*dedupeConfig) {})
	failed := false
	out := &pipelinetest.Sink{Fail: func(*pipeline.Message) error {
		if !failed {
			failed = true
			return errors.New("503")
		}
		return nil
	}}
	src := pipelinetest.NewSource(id(5))
	p := pipeline.New("test")
	p.Clock, p.Logger = clock, slog.New(slog.DiscardHandler)
	for _, err := range []error{
		p.AddSource("src", "test", src),
		p.AddStage("dedupe", "dedupe", d, pipeline.NodeOptions{}),
		p.AddSink("out", "test", out, pipeline.NodeOptions{}),
		p.Connect("src", "", "dedupe"),
		p.Connect("dedupe", "", "out"),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(src.Nacked()) != 1 {
		t.Fatalf("nacked %v, want the first delivery nacked", src.Nacked())
	}
	redelivered, err := d.Process(context.Background(), msg(id(5)))
	if redelivered == nil || err != nil {
		t.Errorf("redelivery after a nacked run: Process = %v, %v; want passed", redelivered, err)
	}
}

// BenchmarkDedupe is the cost per message of a first sighting (a table
// insert, evicting at max_keys) and of a duplicate.
func BenchmarkDedupe(b *testing.B) {
	clock := pipelinetest.NewFakeClock(t0)
	v, err := newDedupe(&dedupeConfig{Key: compile(b, "msg.id"), TTL: time.Hour, MaxKeys: 1 << 16}, component.Env{Clock: clock})
	if err != nil {
		b.Fatal(err)
	}
	d := v.(*dedupe)
	bodies := make([][]byte, 1<<17)
	for i := range bodies {
		bodies[i] = []byte(id(i))
	}
	b.Run("first", func(b *testing.B) {
		i := 0
		for b.Loop() {
			out, _ := d.Process(context.Background(), pipeline.NewMessage(bodies[i&(1<<17-1)], nil))
			if out != nil {
				out.Ack()
			}
			i++
		}
	})
	b.Run("duplicate", func(b *testing.B) {
		d.Process(context.Background(), pipeline.NewMessage(bodies[0], nil))
		for b.Loop() {
			d.Process(context.Background(), pipeline.NewMessage(bodies[0], nil))
		}
	})
}
