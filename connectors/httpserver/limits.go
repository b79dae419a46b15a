package httpserver

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
)

// limits bounds the connections and the requests a source serves at once.
// Safe for concurrent use.
type limits struct {
	maxConns int64
	conns    atomic.Int64
	// none receives a value (if there is room) when conns drops to zero.
	none chan struct{}
	// requests holds a token per request in flight.
	requests chan struct{}
}

func newLimits(maxConns, maxRequests int) limits {
	return limits{maxConns: int64(maxConns), requests: make(chan struct{}, maxRequests), none: make(chan struct{}, 1)}
}

// overKey marks, in a connection's context, a connection beyond max_conns.
type overKey struct{}

// connContext counts a new connection; its requests are refused if it is
// beyond max_conns. It is the server's ConnContext hook, which runs once
// per accepted connection before any request is read.
func (l *limits) connContext(ctx context.Context, _ net.Conn) context.Context {
	if l.conns.Add(1) > l.maxConns {
		return context.WithValue(ctx, overKey{}, true)
	}
	return ctx
}

// connState returns the server's ConnState hook: it uncounts closed
// connections and then calls next, if set.
func (l *limits) connState(next func(net.Conn, http.ConnState)) func(net.Conn, http.ConnState) {
	return func(c net.Conn, st http.ConnState) {
		if st == http.StateClosed || st == http.StateHijacked {
			if l.conns.Add(-1) == 0 {
				select {
				case l.none <- struct{}{}:
				default:
				}
			}
		}
		if next != nil {
			next(c, st)
		}
	}
}

// awaitNoConns returns once no connection is open. The server must accept
// no more: each open one ends by itself, answered and closed, or at its
// read timeout.
func (l *limits) awaitNoConns() {
	for l.conns.Load() > 0 {
		<-l.none
	}
}

// overConns reports whether r came on a connection beyond max_conns.
func overConns(r *http.Request) bool {
	over, _ := r.Context().Value(overKey{}).(bool)
	return over
}

// acquire takes a request slot without waiting; if it reports true the
// caller must call release.
func (l *limits) acquire() bool {
	select {
	case l.requests <- struct{}{}:
		return true
	default:
		return false
	}
}

func (l *limits) release() { <-l.requests }
