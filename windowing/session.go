package windowing

// session returns the session window ev belongs to: [t, t+gap) merged with
// every open session of its key that it overlaps (so a late event that
// bridges two sessions merges them), or late when it overlaps none and
// [t, t+gap) is itself late. Sessions are half-open: an event exactly gap
// after the last one starts a new session.
func (e *Engine[M]) session(ev Event[M], out *[]Result[M]) (*Window[M], bool) {
	start, end := ev.Time, satAdd(ev.Time, int64(e.spec.Gap))
	var hit []*Window[M]
	for _, w := range e.byKey[ev.Key] {
		if w.Start < end && start < w.End {
			hit = append(hit, w)
		}
	}
	if len(hit) == 0 {
		if e.w != NoWatermark && end+int64(e.spec.AllowedLateness) <= e.w {
			return nil, true
		}
		return e.create(ev.Key, ev.KeyJSON, start, end, out), false
	}
	// Merge into the earliest session; byKey keeps creation order, not
	// start order, so find it first.
	keep := hit[0]
	for _, w := range hit[1:] {
		if w.Start < keep.Start {
			keep = w
		}
	}
	for _, w := range hit {
		start, end = min(start, w.Start), max(end, w.End)
		if w != keep {
			e.merge(keep, w)
		}
	}
	// Only now, with the others out of the heap, may keep's order change.
	keep.Start, keep.End = start, end
	e.heap.fix(keep)
	return keep, false
}

// merge moves w's contents into keep and removes w; the caller sets
// keep's bounds.
func (e *Engine[M]) merge(keep, w *Window[M]) {
	for i, a := range e.spec.Aggs {
		keep.Accs[i].merge(&a, &w.Accs[i])
	}
	e.remove(w)
	keep.members = append(keep.members, w.members...)
	w.members = nil
	keep.dirty = true
}
