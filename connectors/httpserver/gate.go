package httpserver

import "sync"

// sendGate lets request handlers into the section where they call
// [pipeline.Outlet.Send] until it is closed, and lets the closer wait for
// those inside. The zero value is open. Safe for concurrent use.
type sendGate struct {
	mu     sync.Mutex
	closed bool
	inside sync.WaitGroup
}

// enter reports whether the caller may send; if so it must call leave.
func (g *sendGate) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.inside.Add(1)
	return true
}

func (g *sendGate) leave() { g.inside.Done() }

// close refuses later enters and waits for the callers inside to leave.
func (g *sendGate) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.inside.Wait()
}
