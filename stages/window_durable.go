package stages

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
// ownership for windows"). The commit point is durable.checkpoint: the
// engine's State and the source positions folded into it go to the store
// in one state.Owner.Commit, and only then are the folded source messages
// acked. Before that commit nothing they carry is acked, so a crash on
// either side of it replays from the broker, and the positions in the
// store tell which replayed messages the state already holds.

// maxRanges bounds the folded ranges kept per source partition. Past it,
// the two lowest ranges are merged, so the gap between them (positions
// this consumer never saw, such as other subjects of a stream, or
// long-acked ones) counts as folded.
const maxRanges = 1024

// durable is one Run's link to the store: the owner of the stage's scope,
// the folded positions per source partition (all of them, and those the
// last commit holds), the source messages to ack at the next commit, and
// the window results not yet resolved.
// The Run goroutine owns all of it but the result counters.
type durable struct {
	store  state.Store
	owner  *state.Owner
	node   string
	pos    map[string]*folded // every position folded into the engine
	cpos   map[string]*folded // the positions the store holds (last commit or restore)
	held   []*pipeline.Message
	timer  timer
	noPos  bool // a message without a source position was folded (warned once)
	dirty  bool // the engine changed since the last commit
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
// stream and stream sequence, or a Kafka topic/partition and offset.
// ok is false for sources without one.
func sourcePosition(m *pipeline.Message) (partition string, pos int64, ok bool) {
	if s, found := m.Meta["nats_stream"]; found {
		seq, err := strconv.ParseInt(m.Meta["nats_stream_seq"], 10, 64)
		return "nats:" + s, seq, err == nil
	}
	if t, found := m.Meta["kafka_topic"]; found {
		p, err1 := strconv.Atoi(m.Meta["kafka_partition"])
		off, err2 := strconv.ParseInt(m.Meta["kafka_offset"], 10, 64)
		return "kafka:" + t + "/" + strconv.Itoa(p), off, err1 == nil && err2 == nil
	}
	return "", 0, false
}

// openDurable acquires the stage's scope and returns the engine restored
// from its last checkpoint.
func (w *windowStage) openDurable(ctx context.Context) (*durable, *windowing.Engine[*pipeline.Message], error) {
	store, err := w.backend.OpenStore()
	if err != nil {
		return nil, nil, fmt.Errorf("window state: %w", err)
	}
	owner, cp, err := state.Acquire(ctx, store, w.guard, w.scope)
	if err != nil {
		store.Close()
		return nil, nil, fmt.Errorf("window state: loading %s: %w", w.scope, err)
	}
	d := &durable{store: store, owner: owner, node: w.node, pos: map[string]*folded{}, done: make(chan struct{}, 1)}
	var e *windowing.Engine[*pipeline.Message]
	if b, ok := cp.Stages[w.node]; ok {
		var s checkpointState
		if err := json.Unmarshal(b, &s); err != nil {
			store.Close()
			return nil, nil, fmt.Errorf("window state: checkpoint %d of %s: %w", cp.Seq, w.scope, err)
		}
		if e, err = windowing.Restore[*pipeline.Message](w.spec, s.Engine); err != nil {
			store.Close()
			return nil, nil, fmt.Errorf("window state: checkpoint %d of %s (was the window changed? delete the scope to start over): %w", cp.Seq, w.scope, err)
		}
	} else if e, err = windowing.New[*pipeline.Message](w.spec); err != nil {
		store.Close()
		return nil, nil, err
	}
	for p, b := range cp.Positions {
		f := &folded{}
		if err := json.Unmarshal(b, f); err != nil {
			store.Close()
			return nil, nil, fmt.Errorf("window state: checkpoint %d of %s: position %s: %w", cp.Seq, w.scope, p, err)
		}
		d.pos[p] = f
	}
	d.cpos = clonePositions(d.pos)
	w.log.Info("window: restored from the state store", "scope", w.scope, "checkpoint", cp.Seq, "open_windows", e.Open(), "partitions", len(d.pos))
	d.timer.set(w.clock, w.backend.CheckpointInterval())
	return d, e, nil
}

// replayed reports whether m is already in the engine, and settles it: a
// copy of a committed message is acked at once, but a copy of one folded
// since the last commit (JetStream redelivers after ack_wait, e.g. while
// the store is down) is held like its original and acked by the next
// commit, so no position is acked before the store holds it.
func (d *durable) replayed(m *pipeline.Message) bool {
	if d == nil {
		return false
	}
	p, pos, ok := sourcePosition(m)
	if !ok || d.pos[p] == nil || !d.pos[p].has(pos) {
		return false
	}
	if c := d.cpos[p]; c != nil && c.has(pos) {
		m.Ack()
	} else {
		d.held = append(d.held, m)
	}
	return true
}

// fold records that m is now in the engine: its position goes into the
// next checkpoint and m is acked once that checkpoint is committed.
func (d *durable) fold(w *windowStage, m *pipeline.Message) {
	if p, pos, ok := sourcePosition(m); ok {
		f := d.pos[p]
		if f == nil {
			f = &folded{}
			d.pos[p] = f
		}
		f.add(pos)
	} else if !d.noPos {
		d.noPos = true
		w.log.Warn("window: a message without a source position (Kafka offset or JetStream sequence) was folded into durable state: after a crash it is counted again (at-least-once)")
	}
	d.held = append(d.held, m)
	d.dirty = true
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
// closed), commits the engine's state with the folded positions, and then
// acks the source messages folded since the last commit. An error leaves
// them held (the caller nacks them); ErrFenced means another owner took
// the scope.
func (d *durable) checkpoint(ctx context.Context, w *windowStage, e *windowing.Engine[*pipeline.Message]) error {
	for d.sent.Load() > 0 {
		select {
		case <-d.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := d.failed.Load(); err != nil {
		return fmt.Errorf("window state: a window result was not delivered, not committing: %w", *err)
	}
	if !d.dirty {
		return nil // the store holds this state already
	}
	st, err := json.Marshal(checkpointState{Engine: e.Snapshot()})
	if err != nil {
		return fmt.Errorf("window state: %w", err)
	}
	positions := make(map[string][]byte, len(d.pos))
	for p, f := range d.pos {
		if positions[p], err = json.Marshal(f); err != nil {
			return fmt.Errorf("window state: %w", err)
		}
	}
	start := time.Now()
	if err := d.owner.Commit(ctx, map[string][]byte{d.node: st}, positions); err != nil {
		w.ckptFailures.Add(1)
		if errors.Is(err, state.ErrFenced) {
			w.log.Error("window: another owner took the state scope; dropping this engine and nacking its messages", "scope", w.scope)
		}
		return fmt.Errorf("window state: commit: %w", err)
	}
	w.ckpts.Add(1)
	took := time.Since(start).Microseconds()
	w.ckptBytes.Store(int64(len(st)))
	w.ckptMicros.Store(took)
	w.ckptPeakBytes.Store(max(w.ckptPeakBytes.Load(), int64(len(st))))
	w.ckptPeakMicros.Store(max(w.ckptPeakMicros.Load(), took))
	for _, m := range d.held {
		m.Ack()
	}
	d.held = d.held[:0]
	d.cpos = clonePositions(d.pos)
	d.dirty = false
	return nil
}

// release nacks every held message (hard stop, fenced or failed commit)
// and closes the store.
func (d *durable) release(err error) int {
	n := len(d.held)
	nackAll(d.held, err)
	d.held = nil
	d.timer.stop()
	d.store.Close()
	return n
}

// tick is the checkpoint timer's channel; nil (never ready) without
// durable state.
func (d *durable) tick() <-chan time.Time {
	if d == nil {
		return nil
	}
	return d.timer.c
}
