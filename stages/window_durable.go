package stages

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/state"
	"github.com/pipe-dsl/pipe/windowing"
)

// The window stage with a top-level `state:` block (docs/scaling.md, "Key
// ownership for windows"). Like a Kafka Streams task, each source
// partition's task (window_task.go) owns its engine and a state scope of
// its own. The commit point is windowRun.checkpoint: for each task, the
// engine's State and the source positions folded into it go to the store
// in one state.Owner.Commit, and only then are that task's folded source
// messages acked. Before that commit nothing they carry is acked, so a
// crash on either side of it replays from the broker, and the positions in
// the store tell which replayed messages the state already holds. A
// commit fenced by another replica (the partition moved in a rebalance)
// drops that task only and nacks its messages.

// maxRanges bounds the folded ranges kept per source partition. Past it,
// the two lowest ranges are merged, so the gap between them (positions
// this consumer never saw, such as other subjects of a stream, or
// long-acked ones) counts as folded.
const maxRanges = 1024

// durable is one Run's link to the store, shared by its tasks: the store,
// the checkpoint timer, and the window results not yet resolved (store
// calls run under the stage's guard). The Run goroutine owns all of it but
// the result counters.
type durable struct {
	store  state.Store
	timer  timer
	noPos  bool // a message without a source position was folded (warned once)
	sent   atomic.Int64
	failed atomic.Pointer[error]
	done   chan struct{} // one signal per resolved result, buffered 1
}

// checkpointState is what the stage stores under its node name.
type checkpointState struct {
	Engine windowing.State `json:"engine"`
}

// folded is a sorted list of disjoint, non-adjacent closed ranges of
// positions already in the state.
type folded struct {
	Ranges [][2]int64 `json:"ranges"`
}

// has reports whether p is in a range.
func (f *folded) has(p int64) bool {
	i := sort.Search(len(f.Ranges), func(i int) bool { return f.Ranges[i][1] >= p })
	return i < len(f.Ranges) && f.Ranges[i][0] <= p
}

// clonePositions copies every partition's ranges.
func clonePositions(pos map[string]*folded) map[string]*folded {
	c := make(map[string]*folded, len(pos))
	for p, f := range pos {
		c[p] = &folded{Ranges: slices.Clone(f.Ranges)}
	}
	return c
}

// add puts p in, merging adjacent ranges.
func (f *folded) add(p int64) {
	i := sort.Search(len(f.Ranges), func(i int) bool { return f.Ranges[i][1] >= p-1 })
	switch {
	case i < len(f.Ranges) && f.Ranges[i][0] <= p+1 && f.Ranges[i][1] >= p-1:
		f.Ranges[i][0], f.Ranges[i][1] = min(f.Ranges[i][0], p), max(f.Ranges[i][1], p)
		if i+1 < len(f.Ranges) && f.Ranges[i+1][0] <= f.Ranges[i][1]+1 {
			f.Ranges[i][1] = f.Ranges[i+1][1]
			f.Ranges = append(f.Ranges[:i+1], f.Ranges[i+2:]...)
		}
	default:
		f.Ranges = append(f.Ranges, [2]int64{})
		copy(f.Ranges[i+1:], f.Ranges[i:])
		f.Ranges[i] = [2]int64{p, p}
	}
	if len(f.Ranges) > maxRanges {
		f.Ranges[1][0] = f.Ranges[0][0]
		f.Ranges = f.Ranges[1:]
	}
}

// sourcePosition returns m's source partition and position: a JetStream
// stream (or stream/partition, with the nats_partition meta key) and
// stream sequence, or a Kafka topic/partition and offset. ok is false for
// sources without one. It is the one place that names partitions: a
// task's scope and its folded positions use these names.
func sourcePosition(m *pipeline.Message) (partition string, pos int64, ok bool) {
	if s, found := m.Meta["nats_stream"]; found {
		seq, err := strconv.ParseInt(m.Meta["nats_stream_seq"], 10, 64)
		if p, found := m.Meta["nats_partition"]; found {
			s += "/" + p
		}
		return "nats:" + s, seq, err == nil
	}
	if t, found := m.Meta["kafka_topic"]; found {
		p, err1 := strconv.Atoi(m.Meta["kafka_partition"])
		off, err2 := strconv.ParseInt(m.Meta["kafka_offset"], 10, 64)
		return "kafka:" + t + "/" + strconv.Itoa(p), off, err1 == nil && err2 == nil
	}
	return "", 0, false
}

// position is a message's sourcePosition, worked out once per message by
// windowRun.add (and only where a task or a checkpoint needs it: the
// partition name is built per message).
type position struct {
	part string
	pos  int64
	ok   bool
}

func positionOf(m *pipeline.Message) position {
	p, pos, ok := sourcePosition(m)
	return position{p, pos, ok}
}

// readEpoch returns the source's read epoch of m's partition: it changes
// whenever this process starts reading the partition again from a
// committed or rewound position (Kafka: kafka_read_epoch, set at each
// assignment and rewind; JetStream: nats_read_epoch, set whenever a
// partition's consumer is read again from its ack floor). "" when the
// source sets none.
func readEpoch(m *pipeline.Message) string {
	if e, ok := m.Meta["kafka_read_epoch"]; ok {
		return e
	}
	return m.Meta["nats_read_epoch"]
}

// openDurable opens the store the Run's tasks share; no I/O happens until
// a task acquires its scope.
func (w *windowStage) openDurable() (*durable, error) {
	store, err := w.backend.OpenStore()
	if err != nil {
		return nil, fmt.Errorf("window state: %w", err)
	}
	d := &durable{store: store, done: make(chan struct{}, 1)}
	d.timer.set(w.clock, w.backend.CheckpointInterval())
	return d, nil
}

// acquire takes t's scope (fencing any previous owner) and restores t's
// engine and folded positions from its last checkpoint.
func (d *durable) acquire(ctx context.Context, w *windowStage, t *task) error {
	owner, cp, err := state.Acquire(ctx, d.store, w.guard, t.scope)
	if err != nil {
		return fmt.Errorf("window state: loading %s: %w", t.scope, err)
	}
	t.owner, t.pos = owner, map[string]*folded{}
	if b, ok := cp.Stages[w.node]; ok {
		var s checkpointState
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("window state: checkpoint %d of %s: %w", cp.Seq, t.scope, err)
		}
		if t.e, err = windowing.Restore[*pipeline.Message](w.spec, s.Engine); err != nil {
			return fmt.Errorf("window state: checkpoint %d of %s (was the window changed? delete the scope to start over): %w", cp.Seq, t.scope, err)
		}
	} else if t.e, err = windowing.New[*pipeline.Message](w.spec); err != nil {
		return err
	}
	for p, b := range cp.Positions {
		f := &folded{}
		if err := json.Unmarshal(b, f); err != nil {
			return fmt.Errorf("window state: checkpoint %d of %s: position %s: %w", cp.Seq, t.scope, p, err)
		}
		t.pos[p] = f
	}
	t.cpos = clonePositions(t.pos)
	w.log.Info("window: restored from the state store", "scope", t.scope, "checkpoint", cp.Seq, "open_windows", t.e.Open(), "partitions", len(t.pos))
	return nil
}

// replayed reports whether m is already in t's engine, and settles it: a
// copy of a committed message is acked at once, but a copy of one folded
// since the last commit (JetStream redelivers after ack_wait, e.g. while
// the store is down) is held like its original and acked by the next
// commit, so no position is acked before the store holds it.
func (t *task) replayed(m *pipeline.Message, at position) bool {
	if t.owner == nil {
		return false
	}
	p, pos := at.part, at.pos
	if !at.ok || t.pos[p] == nil || !t.pos[p].has(pos) {
		return false
	}
	if c := t.cpos[p]; c != nil && c.has(pos) {
		m.Ack()
	} else {
		t.held = append(t.held, m)
	}
	return true
}

// fold records that m is now in t's engine: its position goes into t's
// next checkpoint and m is acked once that checkpoint is committed.
func (d *durable) fold(w *windowStage, t *task, m *pipeline.Message, at position) {
	if at.ok {
		f := t.pos[at.part]
		if f == nil {
			f = &folded{}
			t.pos[at.part] = f
		}
		f.add(at.pos)
	} else if !d.noPos {
		d.noPos = true
		w.log.Warn("window: a message without a source position (Kafka offset or JetStream sequence) was folded into durable state: after a crash it is counted again (at-least-once)")
	}
	t.held = append(t.held, m)
	t.dirty = true
}

// track counts a sent window result; its resolution is reported by the
// returned callback.
func (d *durable) track() func(error) {
	d.sent.Add(1)
	return func(err error) {
		if err != nil {
			d.failed.CompareAndSwap(nil, &err)
		}
		d.sent.Add(-1)
		select {
		case d.done <- struct{}{}:
		default:
		}
	}
}

// checkpoint is the commit point. It waits until every window result sent
// so far is delivered (so a committed state never lacks a result it
// closed), then, task by task, commits the engine's state with the folded
// positions to the task's scope and acks the source messages the task
// folded since its last commit. With partitioning: source, a task whose
// commit is fenced (another replica took its partition) is dropped and its
// messages nacked: fenced joins those errors, and the Run goes on. Any
// other error (err), or a fence of the one scope of partitioning: none,
// leaves the messages held; the caller nacks them and ends the Run.
func (r *windowRun) checkpoint(ctx context.Context) (fenced, err error) {
	d := r.d
	for d.sent.Load() > 0 {
		select {
		case <-d.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err := d.failed.Load(); err != nil {
		return nil, fmt.Errorf("window state: a window result was not delivered, not committing: %w", *err)
	}
	var fences []error
	for _, part := range slices.Sorted(maps.Keys(r.tasks)) {
		t := r.tasks[part]
		err := t.commit(ctx, r.w)
		if errors.Is(err, state.ErrFenced) && r.w.partitioned {
			r.w.log.Warn("window: another owner took the partition's state scope (a rebalance moved it); dropping its engine and nacking its messages", "scope", t.scope, "nacked", len(t.held))
			r.w.fencedN.Add(1)
			r.drop(t, err)
			fences = append(fences, err)
			continue
		}
		if err != nil {
			return errors.Join(fences...), err
		}
	}
	return errors.Join(fences...), nil
}

// commit writes t's state and positions to its scope in one
// state.Owner.Commit, then acks the messages t folded since its last one.
func (t *task) commit(ctx context.Context, w *windowStage) error {
	if !t.dirty {
		return nil // the store holds this state already
	}
	st, err := json.Marshal(checkpointState{Engine: t.e.Snapshot()})
	if err != nil {
		return fmt.Errorf("window state: %w", err)
	}
	positions := make(map[string][]byte, len(t.pos))
	for p, f := range t.pos {
		if positions[p], err = json.Marshal(f); err != nil {
			return fmt.Errorf("window state: %w", err)
		}
	}
	start := time.Now()
	if err := t.owner.Commit(ctx, map[string][]byte{w.node: st}, positions); err != nil {
		w.ckptFailures.Add(1)
		return fmt.Errorf("window state: commit %s: %w", t.scope, err)
	}
	w.ckpts.Add(1)
	took := time.Since(start).Microseconds()
	w.ckptBytes.Store(int64(len(st)))
	w.ckptMicros.Store(took)
	w.ckptPeakBytes.Store(max(w.ckptPeakBytes.Load(), int64(len(st))))
	w.ckptPeakMicros.Store(max(w.ckptPeakMicros.Load(), took))
	for _, m := range t.held {
		m.Ack()
	}
	t.held = t.held[:0]
	t.cpos = clonePositions(t.pos)
	t.dirty = false
	return nil
}

// release stops the checkpoint timer and closes the store; the caller has
// released every task.
func (d *durable) release() {
	d.timer.stop()
	d.store.Close()
}

// tick is the checkpoint timer's channel; nil (never ready) without
// durable state.
func (d *durable) tick() <-chan time.Time {
	if d == nil {
		return nil
	}
	return d.timer.c
}
