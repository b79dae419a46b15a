package stages

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/windowing"
)

// What the window stage shows outside: its result bodies, its figures and
// its hold bound.

// body is the result message: {"key", "window_start", "window_end",
// aggregates..., "final": false if not final}.
func (w *windowStage) body(x result) ([]byte, error) {
	b := make([]byte, 0, 128)
	b = append(b, '{')
	if x.KeyJSON != nil {
		b = append(b, `"key":`...)
		b = append(b, x.KeyJSON...)
		b = append(b, ',')
	}
	b = append(b, `"window_start":"`...)
	b = append(b, fmtTime(x.Start)...)
	b = append(b, `","window_end":"`...)
	b = append(b, fmtTime(x.End)...)
	b = append(b, '"')
	for i, a := range w.spec.Aggs {
		v, err := json.Marshal(x.Values[i])
		if err != nil {
			return nil, fmt.Errorf("aggregate %q: %w", a.Name, err)
		}
		name, _ := json.Marshal(a.Name)
		b = append(b, ',')
		b = append(b, name...)
		b = append(b, ':')
		b = append(b, v...)
	}
	if !x.Final {
		b = append(b, `,"final":false`...)
	}
	return append(b, '}'), nil
}

func fmtTime(ns int64) string {
	if ns == windowing.NoWatermark {
		return "-inf"
	}
	return time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
}

// Report returns the open windows, windows closed by reason, late messages
// and early results.
func (w *windowStage) Report() []pipeline.Figure {
	figs := []pipeline.Figure{
		{Name: "open_windows", Help: "Open (key, window) pairs.", Kind: pipeline.Gauge, Value: float64(w.open.Load())},
		{Name: "late", Help: "Messages late for every window they belong to (dropped or dead-lettered per on_late).", Kind: pipeline.Counter, Value: float64(w.late.Load())},
		{Name: "early_results", Help: "Early results (\"final\": false) emitted by emit.every.", Kind: pipeline.Counter, Value: float64(w.early.Load())},
	}
	for i, r := range windowReasons {
		figs = append(figs, pipeline.Figure{Name: "windows_closed", Help: "Windows emitted, by why they closed.",
			Kind: pipeline.Counter, Label: "reason", LabelValue: string(r), Value: float64(w.closed[i].Load())})
	}
	if w.backend != nil {
		figs = append(figs,
			pipeline.Figure{Name: "checkpoints", Help: "Checkpoints committed to the state store.", Kind: pipeline.Counter, Value: float64(w.ckpts.Load())},
			pipeline.Figure{Name: "checkpoint_failures", Help: "Checkpoint commits that failed (fenced, or the stop came first).", Kind: pipeline.Counter, Value: float64(w.ckptFailures.Load())},
			pipeline.Figure{Name: "checkpoint_bytes", Help: "Size of the window state in the last checkpoint.", Kind: pipeline.Gauge, Value: float64(w.ckptBytes.Load())},
			pipeline.Figure{Name: "checkpoint_seconds", Help: "Duration of the last checkpoint commit.", Kind: pipeline.Gauge, Value: float64(w.ckptMicros.Load()) / 1e6},
			pipeline.Figure{Name: "replayed_skipped", Help: "Redelivered source messages skipped because the state holds them already (acked, or held for the next checkpoint).", Kind: pipeline.Counter, Value: float64(w.replayedN.Load())},
			pipeline.Figure{Name: "owned_partitions", Help: "Source partitions whose window state this process owns (one with partitioning: none).", Kind: pipeline.Gauge, Value: float64(w.tasksN.Load())},
			pipeline.Figure{Name: "fenced_partitions", Help: "Partitions dropped because another replica took their state scope (a rebalance).", Kind: pipeline.Counter, Value: float64(w.fencedN.Load())})
		figs = append(figs, w.guard.Report()...) // store_*: the outage, if any
	}
	return figs
}

// HoldBound returns how long, on the clock, the stage may hold a message
// unacked: until its windows close. ok is false when no clock bound exists
// (event time without idle_timeout: windows close only as later messages
// arrive).
func (w *windowStage) HoldBound() (time.Duration, bool) { return w.holding, w.holding > 0 }
