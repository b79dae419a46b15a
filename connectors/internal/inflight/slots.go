package inflight

import "context"

// Acquire takes one slot of slots (a semaphore: a send takes a slot),
// waiting for it, then up to max-1 more if they are free at once. It
// returns how many it took: 0 when ctx ended first. A source uses it to
// fetch no more messages than it has room for unacked.
func Acquire(ctx context.Context, slots chan struct{}, max int) int {
	select {
	case slots <- struct{}{}:
	case <-ctx.Done():
		return 0
	}
	n := 1
	for n < max {
		select {
		case slots <- struct{}{}:
			n++
		default:
			return n
		}
	}
	return n
}

// Release gives n slots back.
func Release(slots chan struct{}, n int) {
	for range n {
		<-slots
	}
}
