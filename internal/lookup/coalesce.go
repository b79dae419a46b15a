package lookup

import (
	"context"
	"sync"
	"time"

	"github.com/pipe-dsl/pipe/pipeline"
)

// coalescer groups the keys that arrive within maxWait of each other, up
// to maxKeys, into one call of fetch. It owns no goroutines: the first
// caller of a group (its leader) waits for the group to fill or for
// maxWait, then makes the round trip on its own goroutine while the other
// members wait for its result.
type coalescer struct {
	maxKeys int
	maxWait time.Duration
	clock   pipeline.Clock
	fetch   func(ctx context.Context, reqs []Request) (map[string]any, error)

	mu     sync.Mutex
	open   *group // the group new keys join; nil when none is collecting
	joined int    // keys added since the start, for tests
}

// group is one round trip's keys and its result. vals and err are written
// by the leader before done is closed and only read after.
type group struct {
	reqs []Request
	full chan struct{} // closed by whoever adds the maxKeys-th key
	done chan struct{} // closed by the leader once vals and err are set
	vals map[string]any
	err  error
}

// get adds r to the open group (starting one if none is open) and returns
// r's value, whether the store had it, and the round trip's error.
func (c *coalescer) get(ctx context.Context, r Request) (any, bool, error) {
	c.mu.Lock()
	g := c.open
	leader := g == nil
	if leader {
		g = &group{full: make(chan struct{}), done: make(chan struct{})}
		c.open = g
	}
	g.reqs = append(g.reqs, r)
	c.joined++
	if len(g.reqs) >= c.maxKeys {
		close(g.full)
		c.open = nil
	}
	c.mu.Unlock()

	if leader {
		c.lead(ctx, g)
	} else {
		select {
		case <-g.done:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
	v, ok := g.vals[r.Key]
	return v, ok, g.err
}

// lead waits until g is full or maxWait has passed, closes it to new keys
// and makes its round trip.
func (c *coalescer) lead(ctx context.Context, g *group) {
	if c.maxKeys > 1 && c.maxWait > 0 {
		t := c.clock.NewTimer(c.maxWait)
		select {
		case <-g.full:
		case <-t.C():
		case <-ctx.Done():
		}
		t.Stop()
	}
	c.mu.Lock()
	if c.open == g {
		c.open = nil
	}
	reqs := g.reqs // no key joins once g is closed
	c.mu.Unlock()
	g.vals, g.err = c.fetch(ctx, reqs)
	close(g.done)
}
