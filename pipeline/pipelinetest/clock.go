// Package pipelinetest provides a fake clock and recording sources and sinks
// for testing pipelines and stages without sleeping.
package pipelinetest

import (
	"slices"
	"sync"
	"time"

	"github.com/pipe-dsl/pipe/pipeline"
)

// FakeClock is a pipeline.Clock that moves only when told to. It is safe
// for concurrent use.
type FakeClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*fakeTimer
	changed chan struct{} // closed and replaced whenever timers change
}

var _ pipeline.Clock = (*FakeClock)(nil)

// NewFakeClock returns a clock reading start.
func NewFakeClock(start time.Time) *FakeClock {
	return &FakeClock{now: start, changed: make(chan struct{})}
}

func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *FakeClock) NewTimer(d time.Duration) pipeline.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, ch: make(chan time.Time, 1)}
	t.arm(d)
	return t
}

// Advance moves the clock forward by d, firing due timers in deadline order.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	end := c.now.Add(d)
	for {
		slices.SortStableFunc(c.timers, func(a, b *fakeTimer) int { return a.when.Compare(b.when) })
		if len(c.timers) == 0 || c.timers[0].when.After(end) {
			break
		}
		t := c.timers[0]
		c.timers = c.timers[1:]
		c.now = t.when
		select {
		case t.ch <- t.when:
		default:
		}
	}
	c.now = end
	c.notify()
}

// Next returns how far ahead the earliest armed timer fires, and false if
// none is armed.
func (c *FakeClock) Next() (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.timers) == 0 {
		return 0, false
	}
	first := c.timers[0].when
	for _, t := range c.timers[1:] {
		if t.when.Before(first) {
			first = t.when
		}
	}
	return first.Sub(c.now), true
}

// Timers returns how many timers are armed.
func (c *FakeClock) Timers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// WaitTimers blocks until at least n timers are armed: the way a test knows
// a goroutine under test has started waiting.
func (c *FakeClock) WaitTimers(n int) {
	for {
		c.mu.Lock()
		if len(c.timers) >= n {
			c.mu.Unlock()
			return
		}
		ch := c.changed
		c.mu.Unlock()
		<-ch
	}
}

func (c *FakeClock) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

type fakeTimer struct {
	c    *FakeClock
	ch   chan time.Time
	when time.Time
}

// arm schedules t; c.mu must be held.
func (t *fakeTimer) arm(d time.Duration) {
	t.when = t.c.now.Add(d)
	if d <= 0 {
		t.ch <- t.c.now
		return
	}
	t.c.timers = append(t.c.timers, t)
	t.c.notify()
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

// disarm removes t and any undelivered tick, like time.Timer since Go 1.23.
func (t *fakeTimer) disarm() bool {
	i := slices.Index(t.c.timers, t)
	if i >= 0 {
		t.c.timers = slices.Delete(t.c.timers, i, i+1)
		t.c.notify()
	}
	select {
	case <-t.ch:
	default:
	}
	return i >= 0
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	return t.disarm()
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	active := t.disarm()
	t.arm(d)
	return active
}
