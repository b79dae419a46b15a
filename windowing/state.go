package windowing

import (
	"errors"
	"fmt"
)

// State is everything an engine holds except its members: the watermark
// and every open window's contents, in one value that encoding/json (or
// gob) serializes. A checkpoint (issue 19) stores it together with the
// source positions it covers; members are not in it, because with durable
// state a source message is acked by the checkpoint, not by its windows.
type State struct {
	Watermark int64         `json:"watermark"` // NoWatermark before the first event
	MaxEvent  int64         `json:"max_event"`
	Seen      bool          `json:"seen"`
	Windows   []WindowState `json:"windows"` // in close order
}

// WindowState is one open window in a State.
type WindowState struct {
	Key     string `json:"key"`
	KeyJSON []byte `json:"key_json,omitempty"`
	Start   int64  `json:"start"`
	End     int64  `json:"end"`
	Accs    []Acc  `json:"accs"`
}

// Snapshot returns a copy-free view of the engine's state: it shares the
// accumulators, so serialize it before the next Add.
func (e *Engine[M]) Snapshot() State {
	s := State{Watermark: e.w, MaxEvent: e.maxEvent, Seen: e.seen}
	for _, w := range e.heap.sorted() {
		s.Windows = append(s.Windows, WindowState{Key: w.Key, KeyJSON: w.KeyJSON, Start: w.Start, End: w.End, Accs: w.Accs})
	}
	return s
}

// Restore returns an engine for spec holding s, with no members. spec must
// be the spec s was taken with.
func Restore[M any](spec Spec, s State) (*Engine[M], error) {
	e, err := New[M](spec)
	if err != nil {
		return nil, err
	}
	e.w, e.maxEvent, e.seen = s.Watermark, s.MaxEvent, s.Seen
	for i, ws := range s.Windows {
		if len(ws.Accs) != len(spec.Aggs) {
			return nil, fmt.Errorf("restoring window %d: %d accumulators for %d aggregates", i, len(ws.Accs), len(spec.Aggs))
		}
		if ws.End <= ws.Start {
			return nil, fmt.Errorf("restoring window %d: end %d is not after start %d", i, ws.End, ws.Start)
		}
		for _, w := range e.byKey[ws.Key] {
			if w.Start == ws.Start {
				return nil, errors.New("restoring: a (key, start) pair appears twice")
			}
		}
		w := &Window[M]{Key: ws.Key, KeyJSON: ws.KeyJSON, Start: ws.Start, End: ws.End, Accs: ws.Accs}
		e.byKey[ws.Key] = append(e.byKey[ws.Key], w)
		e.heap.push(w)
	}
	return e, nil
}
