package windowing

import (
	"container/heap"
	"slices"
)

// closeHeap orders open windows by the order they close in: end, then key,
// then start. Its top is the next to close and the one evicted at max_open.
type closeHeap[M any] []*Window[M]

func before[M any](a, b *Window[M]) bool {
	if a.End != b.End {
		return a.End < b.End
	}
	if a.Key != b.Key {
		return a.Key < b.Key
	}
	return a.Start < b.Start
}

func (h closeHeap[M]) Len() int           { return len(h) }
func (h closeHeap[M]) Less(i, j int) bool { return before(h[i], h[j]) }
func (h closeHeap[M]) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *closeHeap[M]) Push(x any) {
	w := x.(*Window[M])
	w.idx = len(*h)
	*h = append(*h, w)
}
func (h *closeHeap[M]) Pop() any {
	old := *h
	w := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	w.idx = -1
	return w
}

func (h *closeHeap[M]) push(w *Window[M])   { heap.Push(h, w) }
func (h *closeHeap[M]) remove(w *Window[M]) { heap.Remove(h, w.idx) }
func (h *closeHeap[M]) fix(w *Window[M])    { heap.Fix(h, w.idx) }

// sorted returns the windows in close order.
func (h closeHeap[M]) sorted() []*Window[M] {
	s := slices.Clone(h)
	slices.SortFunc(s, func(a, b *Window[M]) int {
		if before(a, b) {
			return -1
		}
		if before(b, a) {
			return 1
		}
		return 0
	})
	return s
}
