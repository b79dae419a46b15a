// Package tcpproxy is a TCP proxy for tests of connection loss: it can cut
// a store's connections at will, refuse new ones, or cut one connection
// just before a given command reaches the server. Only tests import it.
package tcpproxy

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy forwards 127.0.0.1 connections to a target. It owns one accept
// goroutine and two copy goroutines per connection, all ended by Close
// (registered as a test cleanup).
type Proxy struct {
	ln     net.Listener
	target string

	mu        sync.Mutex
	conns     map[net.Conn]bool
	refuse    bool
	cutBefore []byte        // lower case
	cut       chan struct{} // closed when a cutBefore cut happened
	wg        sync.WaitGroup
}

// New starts a proxy to target.
func New(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut closes every open connection; with refuse, new ones are closed at
// once until Restore.
func (p *Proxy) Cut(refuse bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refuse = refuse
	for c := range p.conns {
		c.Close()
	}
}

// Restore accepts connections again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	p.refuse = false
	p.mu.Unlock()
}

// CutBefore arms a one-shot cut: the next client write containing pattern
// (case-insensitive) is forwarded only up to pattern, then both sides of
// that connection are closed, as if the client died mid-command. The
// returned channel is closed when the cut happened.
func (p *Proxy) CutBefore(pattern string) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cutBefore = bytes.ToLower([]byte(pattern))
	p.cut = make(chan struct{})
	return p.cut
}

// Close stops accepting, closes every connection and waits for the
// goroutines.
func (p *Proxy) Close() {
	p.ln.Close()
	p.Cut(true)
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse := p.refuse
		p.mu.Unlock()
		if refuse {
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[s] = true, true
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, s, true)
		go p.pipe(s, c, false)
	}
}

// pipe copies from src to dst until either fails, then closes both.
func (p *Proxy) pipe(src, dst net.Conn, fromClient bool) {
	defer p.wg.Done()
	defer func() {
		src.Close()
		dst.Close()
		p.mu.Lock()
		delete(p.conns, src)
		delete(p.conns, dst)
		p.mu.Unlock()
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			if fromClient {
				if i, done := p.match(chunk); done != nil {
					dst.Write(chunk[:i])
					close(done)
					return
				}
			}
			if _, werr := dst.Write(chunk); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				return
			}
			return
		}
	}
}

// match disarms and returns the cut channel when chunk holds the armed
// pattern, with the pattern's offset.
func (p *Proxy) match(chunk []byte) (int, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cutBefore == nil {
		return 0, nil
	}
	i := bytes.Index(bytes.ToLower(chunk), p.cutBefore)
	if i < 0 {
		return 0, nil
	}
	done := p.cut
	p.cutBefore, p.cut = nil, nil
	return i, done
}
