package stages

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/expr"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/state"
	"github.com/pipe-dsl/pipe/windowing"
)

// ReasonLate is the dead-letter reason of a message that arrived behind
// the watermark for every window it belongs to (window's on_late:
// dead_letter).
const ReasonLate = "late"

// MetaWindowReason is the meta key of a window result: why it was emitted
// (watermark, idle, session_end, end_of_input, evicted, shutdown), or
// "early" for an early result.
const MetaWindowReason = "window.reason"

type windowConfig struct {
	Type            string            `pipe:"type" enum:"tumbling,sliding,session" desc:"tumbling: adjacent windows of size; sliding: windows of size starting every slide; session: per key, a window that closes after gap without messages." example:"tumbling"`
	Size            time.Duration     `pipe:"size" min:"0" desc:"tumbling and sliding: the window length. Windows are half-open [start, end) and aligned to the Unix epoch: start = floor(t / size) * size." example:"1m"`
	Slide           time.Duration     `pipe:"slide" min:"0" desc:"sliding only: a window starts every slide (at most size); a message belongs to every window that covers it, size/slide of them." example:"10s"`
	Gap             time.Duration     `pipe:"gap" min:"0" desc:"session only: a key's session is [first, last + gap); a message within gap of it extends it, one that bridges two sessions merges them." example:"30s"`
	EndsWhen        *expr.Program     `pipe:"ends_when" desc:"session only: CEL condition; a message for which it is true is added to its session, which then closes (reason session_end)." example:"msg.kind == \"logout\""`
	Key             *expr.Program     `pipe:"key" desc:"CEL expression: each value gets its own windows, emitted with a key field. Unset: one window per interval for all messages, without a key field." example:"msg.user"`
	EventTime       *expr.Program     `pipe:"event_time" desc:"CEL expression for the event time: a timestamp, an RFC 3339 string, or epoch milliseconds. Unset: processing time (the pipeline clock at arrival), and windows close by the clock." example:"msg.ts"`
	MaxOutOfOrder   time.Duration     `pipe:"max_out_of_order" min:"0" desc:"Watermark lag: the watermark is the largest event time seen minus this. Messages up to this much out of order are not late." example:"5s"`
	AllowedLateness time.Duration     `pipe:"allowed_lateness" min:"0" desc:"A window stays open until the watermark passes end + allowed_lateness; a message for a window closed by then is late." example:"0s"`
	IdleTimeout     time.Duration     `pipe:"idle_timeout" min:"0" desc:"Event time: after this long without a message, the watermark advances with the clock (windows close with reason idle). 0 is off: windows then close only as later messages arrive or at end of input. On processing time the clock closes windows anyway." example:"30s"`
	OnLate          string            `pipe:"on_late" enum:"drop,dead_letter" desc:"A message late for every window it belongs to: drop acks, counts and logs it (rate-limited); dead_letter sends it to the dead-letter sink with reason late."`
	MaxOpen         int               `pipe:"max_open" min:"1" desc:"Most open (key, window) pairs. When full, the window that would close first is emitted early (reason evicted), counted and warned about; never dropped." example:"100000"`
	Emit            windowEmit        `pipe:"emit" shorthand:"mode" desc:"on_close: one result per window when it closes. {every: 1s}: also early results of every changed open window at each multiple of every, marked \"final\": false."`
	Aggregate       map[string]string `pipe:"aggregate" desc:"Output field -> function(CEL argument): count(), sum(x), min(x), max(x), avg(x), first(x), last(x), count_distinct(x), quantile(x, q), collect(x). See docs/windows.md for types and accuracy." example:"{total: sum(msg.amount), n: count()}"`
	MaxCollect      int               `pipe:"max_collect" min:"1" desc:"Most items a collect aggregate keeps per window; later ones are not kept." example:"1000"`
	Partitioning    string            `pipe:"partitioning" enum:"source,none" desc:"source: one engine, watermark and state scope per source partition (Kafka topic partition, JetStream stream), so replicas in one consumer group share the work, each owning the windows of its partitions; the records of one key must all be in one partition (key Kafka records by the window key). none: one engine and one scope for all partitions; replicas fence each other. Unset: source when key is set and a state: block exists, else none. source needs key (docs/scaling.md)." example:"source"`
}

type windowEmit struct {
	Mode  string        `pipe:"mode" enum:"on_close" desc:"on_close: results when windows close."`
	Every time.Duration `pipe:"every" min:"0" desc:"Also emit early results (\"final\": false) of changed open windows at every multiple of this on the clock; 0 is off." example:"1s"`
}

func init() {
	component.Register(component.Stage("window",
		"Groups messages into keyed event-time windows (tumbling, sliding, session) closed by a watermark, and emits one aggregate message per window; members are acked once their windows are delivered, or with a state: block once a checkpoint holds them (exactly-once results across kill -9, docs/windows.md).",
		windowConfig{Type: "tumbling", OnLate: "drop", MaxOpen: 100_000, MaxCollect: 1000, Emit: windowEmit{Mode: "on_close"}},
		newWindow, component.WithBatching(component.BatchesReject)))
}

// windowStage groups messages into windows; see windowRun for the loop and
// docs/windows.md for the semantics.
//
//	in  -- a@1 -- b@4 -- c@12 ------------ d@25 --|     (tumbling 10s, key: none)
//	out --------------------- [0,10): a b --- [10,20): c --- [20,30): d (end of input)
//
// A result message carries its members' acknowledgements: a source message
// is acked once every window holding it was emitted and delivered.
type windowStage struct {
	cfg     windowConfig
	spec    windowing.Spec
	args    []*expr.Program // per aggregate; nil for count()
	clock   pipeline.Clock
	log     *slog.Logger
	holding time.Duration // wall-clock bound on holding a message, 0 if none

	open, late, early atomic.Int64
	closed            [len(windowReasons)]atomic.Int64

	// partitioned: one task (engine, watermark, scope) per source
	// partition (partitioning: source; window_task.go).
	partitioned bool

	// With a `state:` block (window_durable.go): the store, the guard every
	// store call runs under (its store_* figures outlive each Run), the
	// scope <pipeline>/<node> (a partition's task adds /<partition>), and
	// the checkpoint figures.
	backend               state.Backend
	guard                 *state.Guard
	scope, node           string
	tasksN, fencedN       atomic.Int64
	ckpts, ckptFailures   atomic.Int64
	ckptBytes, ckptMicros atomic.Int64
	replayedN             atomic.Int64
	ckptPeakBytes         atomic.Int64 // largest and slowest checkpoint (benchmarks)
	ckptPeakMicros        atomic.Int64

	// added, if set, is called when a message has been handled (a test
	// hook: the clock may then move without racing the stage).
	added func()
	// committed, if set, is called after each durable checkpoint attempt
	// with its error (a test hook).
	committed func(error)
}

var windowReasons = [...]windowing.Reason{windowing.ReasonWatermark, windowing.ReasonIdle, windowing.ReasonSessionEnd,
	windowing.ReasonEndOfInput, windowing.ReasonEvicted, windowing.ReasonShutdown}

var (
	_ pipeline.Stage    = (*windowStage)(nil)
	_ pipeline.Reporter = (*windowStage)(nil)
	_ pipeline.Holder   = (*windowStage)(nil)
)

// reserved are the output fields an aggregate may not be named.
var reserved = []string{"key", "window_start", "window_end", "final"}

func newWindow(c *windowConfig, env component.Env) (any, error) {
	spec := windowing.Spec{MaxOutOfOrder: c.MaxOutOfOrder, AllowedLateness: c.AllowedLateness, MaxOpen: c.MaxOpen}
	var errs []error
	refuseAt := func(field string, cond bool, format string, args ...any) {
		if cond {
			errs = append(errs, &component.FieldError{Path: []string{field}, Err: fmt.Errorf(format, args...)})
		}
	}
	refuse := func(cond bool, format string, args ...any) {
		if cond {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	length := c.Size
	switch c.Type {
	case "tumbling":
		spec.Type, spec.Size = windowing.Tumbling, c.Size
		refuse(c.Size <= 0, "tumbling windows need size")
		refuse(c.Slide != 0, "slide is for sliding windows; set type: sliding")
	case "sliding":
		spec.Type, spec.Size, spec.Slide = windowing.Sliding, c.Size, c.Slide
		refuse(c.Size <= 0 || c.Slide <= 0, "sliding windows need size and slide")
	case "session":
		spec.Type, spec.Gap, length = windowing.Session, c.Gap, c.Gap
		refuse(c.Gap <= 0, "session windows need gap")
		refuse(c.Size != 0 || c.Slide != 0, "session windows take gap, not size or slide")
	}
	if c.EventTime != nil {
		t := c.EventTime.ResultType()
		refuseAt("event_time", !slices.Contains([]string{"dyn", "string", "int", "uint", "double", "google.protobuf.Timestamp"}, t),
			"the expression is a %s; want a timestamp, an RFC 3339 string or epoch milliseconds", t)
	}
	if c.EndsWhen != nil {
		t := c.EndsWhen.ResultType()
		refuseAt("ends_when", t != "dyn" && t != "bool", "the expression is a %s; want a bool", t)
	}
	refuse(c.Type != "session" && c.Gap != 0, "gap is for session windows; set type: session")
	refuse(c.Type != "session" && c.EndsWhen != nil, "ends_when is for session windows; set type: session")
	refuseAt("partitioning", c.Partitioning == "source" && c.Key == nil,
		"source partitioning needs key: without one, every partition would emit its own result for the same window")
	var args []*expr.Program
	for _, name := range slices.Sorted(maps.Keys(c.Aggregate)) {
		if slices.Contains(reserved, name) {
			errs = append(errs, &component.FieldError{Path: []string{"aggregate"},
				Err: fmt.Errorf("%q: the output already has that field (%v are reserved)", name, reserved)})
			continue
		}
		a, prog, err := parseAggregate(name, c.Aggregate[name], c.MaxCollect)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		spec.Aggs = append(spec.Aggs, a)
		args = append(args, prog)
	}
	w := &windowStage{cfg: *c, clock: env.Clock, log: env.Logger}
	w.partitioned = c.Partitioning == "source" || (c.Partitioning == "" && c.Key != nil && env.State != nil)
	if len(errs) == 0 {
		if err := spec.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	w.spec, w.args = spec, args
	if w.clock == nil {
		w.clock = pipeline.SystemClock
	}
	if w.log == nil {
		w.log = slog.Default()
	}
	w.log = w.log.With("node", env.Node)
	if (c.EventTime == nil || c.IdleTimeout > 0) && c.Type != "session" {
		// The clock bounds how long a window stays open. A session has no
		// such bound: every message within gap extends it.
		w.holding = length + c.MaxOutOfOrder + c.AllowedLateness
		if c.EventTime != nil {
			w.holding += c.IdleTimeout
		}
	}
	if env.State != nil {
		// Durable state: a message is acked by the next checkpoint, not by
		// its windows.
		w.backend, w.scope, w.node = env.State, env.Pipeline+"/"+env.Node, env.Node
		w.holding = env.State.CheckpointInterval()
		g, err := state.NewGuard(env.Node+" state store", w.clock, w.log, time.Second)
		if err != nil {
			return nil, err
		}
		w.guard = g
	}
	return w, nil
}
