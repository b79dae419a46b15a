package stages

import (
	"context"
	"errors"
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
	part   string // sourcePosition's partition; "" for all of them
	scope  string
	epochs map[string]string // source partition -> readEpoch of its messages folded
	e      *windowing.Engine[*pipeline.Message]
	last   time.Time

	owner *state.Owner       // nil without durable state
	pos   map[string]*folded // every position folded into the engine
	cpos  map[string]*folded // the positions the store holds (last commit or restore)
	held  []*pipeline.Message
	dirty bool // the engine changed since the last commit
}

var (
	// errReread nacks a task's held messages when its partition is read
	// again from a committed or rewound position: the new read replays them.
	errReread = errors.New("window: the partition is read again from its committed position")
	// errStaleRead nacks a message of a read whose earlier messages a
	// dropped task nacked: the source reads them all again.
	errStaleRead = errors.New("window: this read of the partition was dropped (fenced or reloaded); the source reads it again")
)

// taskFor returns the task of m's partition, creating it at its first
// message: with durable state it acquires the partition's scope (fencing
// any previous owner) and restores it. ok is false when m belongs to a
// read whose messages a dropped task nacked: the caller nacks m too, and
// the source reads the partition again from its committed position.
// at is m's position (zero without durable state or partitioning).
func (r *windowRun) taskFor(ctx context.Context, m *pipeline.Message, at position) (t *task, ok bool, err error) {
	src := at.part
	part := ""
	if r.w.partitioned {
		part = src
	}
	epoch := ""
	if r.d != nil {
		epoch = readEpoch(m)
	}
	t = r.tasks[part]
	if epoch != "" {
		if b, found := r.blocked[src]; found {
			if b == epoch {
				return nil, false, nil // still the read a drop nacked
			}
			delete(r.blocked, src)
		}
		if t != nil && t.epochs[src] != "" && t.epochs[src] != epoch {
			// Assigned again or rewound: the read starts over from the
			// committed offset, so the task starts over from its checkpoint.
			r.w.log.Info("window: partition read again from its committed position; reloading its state", "scope", t.scope, "partition", src)
			r.drop(t, errReread)
			t = nil
		}
	}
	if t == nil {
		if t, err = r.newTask(ctx, part); err != nil {
			return nil, false, err
		}
	}
	if epoch != "" {
		t.epochs[src] = epoch
	}
	return t, true, nil
}

// newTask creates partition part's task; with durable state it acquires
// and restores its scope.
func (r *windowRun) newTask(ctx context.Context, part string) (*task, error) {
	t := &task{part: part, scope: r.w.scope, epochs: map[string]string{}, last: r.w.clock.Now()}
	if part != "" {
		t.scope += "/" + part
	}
	if r.d != nil {
		if err := r.d.acquire(ctx, r.w, t); err != nil {
			return nil, err
		}
	} else {
		var err error
		if t.e, err = windowing.New[*pipeline.Message](r.w.spec); err != nil {
			return nil, err
		}
		t.e.Dup = (*pipeline.Message).Copy
	}
	r.tasks[part] = t
	r.w.tasksN.Store(int64(len(r.tasks)))
	return t, nil
}

// drop forgets t and nacks what it holds (durable state only: its engine's
// windows have no members). Later messages of the reads it nacked are
// nacked too, until their source reads them again (a new read epoch):
// folding them would skip the nacked ones. The next message of its
// partition after that acquires the scope again.
func (r *windowRun) drop(t *task, cause error) {
	for _, m := range t.held {
		if e := readEpoch(m); e != "" {
			src, _, _ := sourcePosition(m)
			r.blocked[src] = e
		}
	}
	nackAll(t.held, cause)
	t.held = nil
	delete(r.tasks, t.part)
	r.w.tasksN.Store(int64(len(r.tasks)))
	r.w.open.Store(int64(r.openWindows()))
}

// openWindows counts the open windows of every task.
func (r *windowRun) openWindows() int {
	n := 0
	for _, t := range r.tasks {
		n += t.e.Open()
	}
	return n
}
