package pipeline

import (
	"sync"
	"time"
)

// RecentErrorsKept is how many failures [Pipeline.RecentErrors] remembers
// per node.
const RecentErrorsKept = 20

// RecentError is one failure at a node: when, its reason (as in the
// dead-letter envelope) and the error's text.
type RecentError struct {
	Time   time.Time
	Reason string
	Error  string
}

// recentErrors is a node's ring of its last failures. It is written only on
// the failure path, so its mutex costs nothing to messages that succeed.
type recentErrors struct {
	mu   sync.Mutex
	ring [RecentErrorsKept]RecentError
	next int
	n    int
}

func (r *recentErrors) add(now time.Time, err error) {
	e := RecentError{Time: now, Reason: Reason(err), Error: err.Error()}
	r.mu.Lock()
	r.ring[r.next] = e
	r.next = (r.next + 1) % len(r.ring)
	r.n = min(r.n+1, len(r.ring))
	r.mu.Unlock()
}

// list returns the kept failures, newest first.
func (r *recentErrors) list() []RecentError {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]RecentError, 0, r.n)
	for i := 1; i <= r.n; i++ {
		out = append(out, r.ring[(r.next-i+len(r.ring))%len(r.ring)])
	}
	return out
}

// RecentErrors returns the last failures (at most [RecentErrorsKept]) of
// the node named node, newest first, and false if there is no such node.
// The texts are the errors' own: pipe keeps secrets out of errors.
func (p *Pipeline) RecentErrors(node string) ([]RecentError, bool) {
	for _, n := range p.all() {
		if n.name == node {
			return n.recent.list(), true
		}
	}
	return nil, false
}
