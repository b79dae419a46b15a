package stages

import (
	"context"
	"fmt"
	"time"

	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/state"
	"github.com/pipe-dsl/pipe/windowing"
)

// task is one source partition's share of a window stage, as in Kafka
// Streams: its engine (window contents and its own watermark), the arrival
// of its last message, and with durable state the owner of its scope
// <pipeline>/<node>/<partition>, the positions folded into it and the
// source messages it holds until its next commit. With partitioning: none
// there is one task, partition "", whose scope is <pipeline>/<node>.
// The Run goroutine owns every task.
type task struct {
	part  string // sourcePosition's partition; "" for all of them
	scope string
	epoch string // readEpoch of the messages folded
	e     *windowing.Engine[*pipeline.Message]
	last  time.Time

	owner *state.Owner // nil without durable state
	pos   map[string]*folded
	held  []*pipeline.Message
	dirty bool // the engine changed since the last commit
}

// errReread nacks a task's held messages when its partition is read again
// from a committed or rewound position: the new read replays them.
var errReread = fmt.Errorf("window: the partition is read again from its committed position: %w", pipeline.ErrAbandoned)

// taskFor returns the task of m's partition, creating it at its first
// message: with durable state it acquires the partition's scope (fencing
// any previous owner) and restores it. ok is false when m belongs to a
// partition dropped because another owner fenced it: the caller nacks m,
// which the source reads again from the committed position.
func (r *windowRun) taskFor(ctx context.Context, m *pipeline.Message) (t *task, ok bool, err error) {
	part := ""
	if r.w.partitioned {
		part, _, _ = sourcePosition(m)
	}
	epoch := readEpoch(m)
	t = r.tasks[part]
	if r.d != nil {
		if f, dropped := r.d.fenced[part]; dropped {
			if epoch != "" && epoch == f {
				return nil, false, nil // still the read that was fenced
			}
			delete(r.d.fenced, part)
		}
		if t != nil && epoch != "" && t.epoch != "" && epoch != t.epoch {
			// Assigned again or rewound: the read starts over from the
			// committed offset, so the task starts over from its checkpoint.
			r.w.log.Info("window: partition read again from its committed position; reloading its state", "scope", t.scope)
			r.drop(t, errReread)
			t = nil
		}
	}
	if t != nil {
		return t, true, nil
	}
	t = &task{part: part, scope: r.w.scope, epoch: epoch, last: r.w.clock.Now()}
	if part != "" {
		t.scope += "/" + part
	}
	if r.d != nil {
		if err := r.d.acquire(ctx, r.w, t); err != nil {
			return nil, false, err
		}
	} else {
		if t.e, err = windowing.New[*pipeline.Message](r.w.spec); err != nil {
			return nil, false, err
		}
		t.e.Dup = (*pipeline.Message).Copy
	}
	r.tasks[part] = t
	r.w.tasksN.Store(int64(len(r.tasks)))
	return t, true, nil
}

// drop forgets t and nacks what it holds (durable state only: its engine's
// windows have no members). The next message of its partition acquires
// the scope again.
func (r *windowRun) drop(t *task, cause error) {
	nackAll(t.held, cause)
	t.held = nil
	delete(r.tasks, t.part)
	r.w.tasksN.Store(int64(len(r.tasks)))
	r.w.open.Store(int64(r.openWindows()))
}

// dropFenced drops t after another owner fenced its scope; the messages of
// its current read are nacked until the source reads the partition again.
func (r *windowRun) dropFenced(t *task, cause error) {
	r.w.fencedN.Add(1)
	r.d.fenced[t.part] = t.epoch
	r.drop(t, cause)
}

// openWindows counts the open windows of every task.
func (r *windowRun) openWindows() int {
	n := 0
	for _, t := range r.tasks {
		n += t.e.Open()
	}
	return n
}
