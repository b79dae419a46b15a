package pipeline

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Tapped is a snapshot of a message leaving a node, handed to a [TapFunc].
// It shares nothing mutable with the message: Body is immutable by the
// [Message] contract, Meta is a copy, and Members holds the bodies of a
// batch's members.
type Tapped struct {
	// Port is the output port ("" for the default port; "" for a sink, where
	// the message left by being delivered).
	Port    string
	Body    []byte
	Meta    map[string]string
	Members [][]byte
	Created time.Time
}

// TapFunc receives the messages leaving a node. It runs on the node's
// goroutine for every message, so it must return at once: buffer what fits
// and count the rest as skipped, never block.
type TapFunc func(Tapped)

// taps is one node's attached taps; it is replaced, never modified, so the
// message path reads it with one atomic load.
type taps struct {
	fns []*TapFunc
}

// Tap attaches fn to the node named node: fn sees every message that
// leaves it (sent on by a source or stage, delivered by a sink), until the
// returned detach is called. Detach may be called more than once. With no
// tap attached the message path pays one atomic pointer load.
//
// Tap is safe to call concurrently with Run.
func (p *Pipeline) Tap(node string, fn TapFunc) (detach func(), err error) {
	n := p.byName[node]
	if n == nil && p.dlq != nil && (node == p.dlq.name || node == "dead_letter") {
		n = p.dlq
	}
	if n == nil {
		return nil, fmt.Errorf("tap: no node named %q", node)
	}
	f := &fn
	p.tapMu.Lock()
	defer p.tapMu.Unlock()
	next := &taps{}
	if cur := n.taps.Load(); cur != nil {
		next.fns = slices.Clone(cur.fns)
	}
	next.fns = append(next.fns, f)
	n.taps.Store(next)
	var once sync.Once
	return func() {
		once.Do(func() {
			p.tapMu.Lock()
			defer p.tapMu.Unlock()
			cur := n.taps.Load()
			fns := slices.DeleteFunc(slices.Clone(cur.fns), func(g *TapFunc) bool { return g == f })
			if len(fns) == 0 {
				n.taps.Store(nil)
				return
			}
			n.taps.Store(&taps{fns: fns})
		})
	}, nil
}

// tapOut shows m, leaving n on port, to n's taps. It must be called while
// the caller still owns m.
func tapOut(n *node, port string, m *Message) {
	t := n.taps.Load()
	if t == nil {
		return
	}
	v := Tapped{Port: port, Body: m.Body, Meta: maps.Clone(m.Meta), Created: m.Created}
	if m.batch != nil {
		v.Members = make([][]byte, len(m.batch))
		for i, b := range m.batch {
			v.Members[i] = b.Body
		}
	}
	for _, fn := range t.fns {
		(*fn)(v)
	}
}

// tapOf is a node's tap list; a field of node, declared here beside its use.
type tapOf = atomic.Pointer[taps]
