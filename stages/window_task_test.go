package stages

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/state"
	"github.com/pipe-dsl/pipe/windowing"
)

// outcomes records how each test message was resolved.
type outcomes struct {
	mu  sync.Mutex
	got map[string]string // "p/offset" -> acked | nacked
}

// msg is the record at offset of Kafka partition part of topic t, read in
// read epoch epoch, with key k, event time ts (ms) and value v.
func (o *outcomes) msg(part, offset int, epoch string, k string, ts, v int) *pipeline.Message {
	id := fmt.Sprintf("%d/%d", part, offset)
	m := pipeline.NewMessage(fmt.Appendf(nil, `{"k":%q,"ts":%d,"v":%d}`, k, ts, v), func(err error) {
		o.mu.Lock()
		defer o.mu.Unlock()
		if err != nil {
			o.got[id] = "nacked"
		} else {
			o.got[id] = "acked"
		}
	})
	m.Meta = map[string]string{"kafka_topic": "t", "kafka_partition": strconv.Itoa(part),
		"kafka_offset": strconv.Itoa(offset), "kafka_read_epoch": epoch}
	return m
}

func (o *outcomes) of(part, offset int) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if s, ok := o.got[fmt.Sprintf("%d/%d", part, offset)]; ok {
		return s
	}
	return "unresolved"
}

func TestGivenTwoPartitionsWhenOneRunsAheadInEventTimeThenTheOtherIsNotLateBecauseEachHasItsOwnWatermark(t *testing.T) {
	for _, c := range []struct {
		partitioning string
		late         int64
		ckpts        int64
	}{{"source", 0, 2}, {"none", 1, 1}} {
		t.Run(c.partitioning, func(t *testing.T) {
			b := durableBackends(t)["redis"](t)
			out := &tableOutlet{t: t, rows: map[string]string{}, lateOK: true}
			o := &outcomes{got: map[string]string{}}
			r := startDurableWith(t, b, out, func(cfg *windowConfig) { cfg.Partitioning = c.partitioning })
			// Given partition 1 at event time 10s (its watermark past the
			// first second's windows),
			r.send(o.msg(1, 0, "5", "b", 10_000, 1)) // each partition has its own read epoch
			// when partition 0 sends its own key's record at 0.5s,
			r.send(o.msg(0, 0, "1", "a", 500, 2))
			r.checkpoint()
			// then with source partitioning it is not late and each
			// partition commits to a scope of its own; with none, one
			// watermark makes it late.
			if got := r.w.late.Load(); got != c.late {
				t.Errorf("late = %d, want %d", got, c.late)
			}
			if got := r.w.ckpts.Load(); got != c.ckpts {
				t.Errorf("checkpoints = %d, want %d (one per owned scope)", got, c.ckpts)
			}
			close(r.in)
			if err := <-r.done; err != nil {
				t.Fatal(err)
			}
			if c.partitioning == "source" {
				if out.rows[`a@1970-01-01T00:00:00Z`] == "" || out.rows[`b@1970-01-01T00:00:10Z`] == "" {
					t.Errorf("table = %v, want a's window at 0s and b's at 10s", out.rows)
				}
			}
		})
	}
}

func TestGivenAPartitionTakenOverByAnotherReplicaWhenTheOlderCommitsThenOnlyThatPartitionIsDroppedNackedAndLaterReacquired(t *testing.T) {
	for name, backend := range durableBackends(t) {
		t.Run(name, func(t *testing.T) {
			b := backend(t)
			out := &tableOutlet{t: t, rows: map[string]string{}}
			o := &outcomes{got: map[string]string{}}
			// Given a replica that folded 10 records of partition 0 and 5
			// of partition 1,
			old := startDurable(t, b, out)
			defer func() { old.cancel(); <-old.done }()
			for i := range 10 {
				old.send(o.msg(0, i, "1", "a", i*100, i))
			}
			for i := range 5 {
				old.send(o.msg(1, i, "1", "b", i*100, i))
			}
			// when a second replica takes partition 0 over (a rebalance),
			// folds its offset 10 and commits, and then the first commits,
			newer := startDurable(t, b, out)
			defer func() { newer.cancel(); <-newer.done }()
			newer.send(o.msg(0, 10, "7", "a", 1000, 10))
			newer.checkpoint()
			old.clock.Advance(old.w.backend.CheckpointInterval())
			// then only partition 0's commit is fenced: its 10 records are
			// nacked, partition 1's 5 are acked, and the replica runs on.
			if err := <-old.committed; !errors.Is(err, state.ErrFenced) {
				t.Fatalf("checkpoint after the takeover = %v, want ErrFenced", err)
			}
			for i := range 10 {
				if got := o.of(0, i); got != "nacked" {
					t.Fatalf("partition 0 offset %d: %s, want nacked", i, got)
				}
			}
			for i := range 5 {
				if got := o.of(1, i); got != "acked" {
					t.Fatalf("partition 1 offset %d: %s, want acked by its commit", i, got)
				}
			}
			if got := old.w.fencedN.Load(); got != 1 {
				t.Errorf("fenced partitions = %d, want 1", got)
			}
			// When a record of the fenced read still reaches it, it is
			// nacked, not folded into a new engine;
			old.send(o.msg(0, 11, "1", "a", 1100, 11))
			if got := o.of(0, 11); got != "nacked" {
				t.Errorf("record of the fenced read: %s, want nacked", got)
			}
			// and when the partition comes back in a new read from the
			// committed offset, the replica acquires the scope again and
			// restores the newer owner's checkpoint: offset 10 is skipped.
			old.send(o.msg(0, 10, "2", "a", 1000, 10))
			if got := old.w.replayedN.Load(); got != 1 {
				t.Errorf("replayed skipped = %d, want 1 (offset 10, in the newer owner's checkpoint)", got)
			}
			if got := o.of(0, 10); got != "acked" {
				t.Errorf("offset 10 replayed: %s, want acked", got)
			}
			if got := old.w.tasksN.Load(); got != 2 {
				t.Errorf("owned partitions = %d, want 2", got)
			}
		})
	}
}

func TestGivenALivePartitionWhenItsReadEpochChangesThenItsStateIsReloadedFromTheCheckpoint(t *testing.T) {
	b := durableBackends(t)["redis"](t)
	out := &tableOutlet{t: t, rows: map[string]string{}}
	o := &outcomes{got: map[string]string{}}
	r := startDurable(t, b, out)
	defer func() { r.cancel(); <-r.done }()
	// Given offsets 0..4 committed and 5..7 folded since,
	for i := range 5 {
		r.send(o.msg(0, i, "1", "a", i*100, i))
	}
	r.checkpoint()
	for i := 5; i < 8; i++ {
		r.send(o.msg(0, i, "1", "a", i*100, i))
	}
	// when the partition is assigned again and read from offset 3,
	for i := 3; i < 8; i++ {
		r.send(o.msg(0, i, "2", "a", i*100, i))
	}
	// then the uncommitted 5..7 of the old read were nacked, 3 and 4 are
	// skipped as committed, and 5..7 are folded again: the window counts
	// each offset once.
	if got := r.w.replayedN.Load(); got != 2 {
		t.Errorf("replayed skipped = %d, want 2", got)
	}
	close(r.in)
	if err := <-r.done; err != nil {
		t.Fatal(err)
	}
	r.done <- nil // for the deferred receive
	if got, want := out.rows[`a@1970-01-01T00:00:00Z`], `{"key":"a","window_start":"1970-01-01T00:00:00Z","window_end":"1970-01-01T00:00:01Z","n":8,"s":28}`; got != want {
		t.Errorf("row = %s, want %s", got, want)
	}
}

func TestGivenPartitioningNoneWhenAnotherReplicaTakesTheScopeThenTheRunEndsFencedAndNacksWhatItFolded(t *testing.T) {
	b := durableBackends(t)["redis"](t)
	out := &tableOutlet{t: t, rows: map[string]string{}}
	o := &outcomes{got: map[string]string{}}
	// Given a run with one scope for all partitions that folded 10 records,
	old := startDurableWith(t, b, out, func(c *windowConfig) { c.Partitioning = "none" })
	for i := range 10 {
		old.send(o.msg(i%2, i, "1", "a", i*100, i))
	}
	// when a second run takes the scope over and the first one commits,
	newer := startDurableWith(t, b, out, func(c *windowConfig) { c.Partitioning = "none" })
	defer func() { newer.cancel(); <-newer.done }()
	newer.send(o.msg(0, 100, "1", "a", 0, 0))
	old.clock.Advance(old.w.backend.CheckpointInterval())
	// then the commit is fenced, the run ends with ErrFenced (one owner:
	// replicas fence each other) and the 10 records are nacked.
	if err := <-old.committed; !errors.Is(err, state.ErrFenced) {
		t.Fatalf("commit after the takeover = %v, want ErrFenced", err)
	}
	if err := <-old.done; !errors.Is(err, state.ErrFenced) {
		t.Errorf("Run = %v, want ErrFenced", err)
	}
	for i := range 10 {
		if got := o.of(i%2, i); got != "nacked" {
			t.Errorf("offset %d: %s, want nacked", i, got)
		}
	}
}

// signalOutlet is a tableOutlet that signals each result.
type signalOutlet struct {
	*tableOutlet
	sent chan struct{}
}

func (o signalOutlet) Send(ctx context.Context, m *pipeline.Message) error {
	err := o.tableOutlet.Send(ctx, m)
	o.sent <- struct{}{}
	return err
}

func TestGivenTwoPartitionsWhenOneFallsQuietThenIdleTimeoutClosesOnlyItsWindows(t *testing.T) {
	b := durableBackends(t)["redis"](t)
	out := signalOutlet{&tableOutlet{t: t, rows: map[string]string{}}, make(chan struct{}, 10)}
	o := &outcomes{got: map[string]string{}}
	r := startDurableWith(t, b, out, func(c *windowConfig) { c.IdleTimeout = 5 * time.Second })
	defer func() { r.cancel(); <-r.done }()
	// advance moves the clock 3s: one checkpoint, and want results.
	advance := func(want int) {
		t.Helper()
		r.clock.Advance(3 * time.Second)
		<-r.committed
		for range want {
			select {
			case <-out.sent:
			case <-time.After(10 * time.Second):
				t.Fatal("no window result")
			}
		}
	}
	// Given partition 0's window at 0s, then 3s later partition 1's,
	r.send(o.msg(0, 0, "1", "a", 0, 1))
	advance(0)
	r.send(o.msg(1, 0, "1", "b", 0, 2))
	// when the clock passes partition 0's idle timeout (at 5s) but not
	// partition 1's (at 8s),
	advance(1)
	// then only partition 0's window closed (reason idle),
	closed := func() int64 { return r.w.closed[reasonIndex(windowing.ReasonIdle)].Load() }
	if got := closed(); got != 1 || len(out.rows) != 1 || out.rows[`a@1970-01-01T00:00:00Z`] == "" {
		t.Fatalf("windows closed idle = %d, table %v; want 1, a's window", got, out.rows)
	}
	// and when partition 1's timeout passes too, its window closes.
	advance(1)
	if got := closed(); got != 2 || len(out.rows) != 2 {
		t.Fatalf("windows closed idle = %d, table %v; want 2, a's and b's windows", got, out.rows)
	}
}
