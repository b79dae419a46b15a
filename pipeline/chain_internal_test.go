package pipeline

import (
	"testing"
	"time"
)

// Given a node's mean processing time, a worker holds back at most the
// results it makes in maxHold before handing them on: a fast processor
// fills whole chains, a slow one (an HTTP call) hands each result on at
// once.
func TestAWorkerHoldsNoMoreResultsThanItMakesInAMillisecond(t *testing.T) {
	for _, tc := range []struct {
		mean time.Duration
		want int
	}{
		{0, maxLink}, // nothing measured yet
		{2 * time.Microsecond, maxLink},
		{100 * time.Microsecond, 10},
		{time.Millisecond, 1},
		{50 * time.Millisecond, 1},
	} {
		n := &node{}
		if tc.mean > 0 {
			n.stats.latency.record(tc.mean, 1)
		}
		o := &outlet{}
		o.holdFor(n)
		if o.holdMax != tc.want {
			t.Errorf("holdFor(mean %v) = %d, want %d", tc.mean, o.holdMax, tc.want)
		}
	}
}

// Given buffers of several sizes, chains and slots keep the number of
// waiting messages at about the buffer, and small buffers unchained.
func TestChainsKeepTheBufferBoundInMessages(t *testing.T) {
	for _, tc := range []struct{ buffer, link, slots int }{
		{1, 1, 1}, {8, 1, 8}, {15, 1, 15}, {16, 2, 8}, {128, 16, 8}, {1000, 64, 16}, {4096, 64, 64},
	} {
		n := &node{role: RoleSink, opts: NodeOptions{Buffer: tc.buffer}}
		n.makeInput()
		if n.link != tc.link || cap(n.in) != tc.slots {
			t.Errorf("buffer %d: chains of %d in %d slots, want %d in %d", tc.buffer, n.link, cap(n.in), tc.link, tc.slots)
		}
	}
}
