package httpserver

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

// rawPost writes a POST of body on conn and reads the answer.
func rawPost(t *testing.T, conn net.Conn, body string) int {
	t.Helper()
	must(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	_, err := io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: "+
		strconv.Itoa(len(body))+"\r\n\r\n"+body)
	must(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	must(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestRequestsBeyondMaxRequestsAre429: Given max_requests 2 and two
// requests waiting on a held sink, then a third is answered 429 at once,
// before its body is read, and none of it is delivered.
func TestRequestsBeyondMaxRequestsAre429(t *testing.T) {
	sink := &pipelinetest.Sink{Gate: make(chan struct{}), Entered: make(chan struct{}, 4)}
	s := start(t, func(c *config) { c.MaxRequests = 2 }, opts{sink: sink})
	codes := make(chan int, 2)
	for _, b := range []string{`{"n":1}`, `{"n":2}`} {
		go func() {
			code, _, err := send(s.url, b)
			if err != nil {
				t.Error(err)
			}
			codes <- code
		}()
	}
	<-sink.Entered
	waitFor(t, "both requests in the pipeline", func() bool { return s.stats("out").In == 2 })
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Post(s.url, "application/json", strings.NewReader(`{"n":3}`))
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("third request with max_requests 2 = %d, want 429", resp.StatusCode)
	}
	close(sink.Gate)
	for range 2 {
		if c := <-codes; c != http.StatusOK {
			t.Errorf("request in flight = %d, want 200", c)
		}
	}
	if n := len(sink.Bodies()); n != 2 {
		t.Errorf("sink got %d messages, want 2 (not the refused one)", n)
	}
}

// TestConnectionsBeyondMaxConnsAre503: Given max_conns 2 and two open
// connections, then a request on a third is answered 503 and its connection
// closed; once one of the two closes, a new connection is served.
func TestConnectionsBeyondMaxConnsAre503(t *testing.T) {
	closed := make(chan struct{}, 8)
	s := start(t, func(c *config) { c.MaxConns = 2 }, opts{connState: func(_ net.Conn, st http.ConnState) {
		if st == http.StateClosed {
			closed <- struct{}{}
		}
	}})
	dial := func() net.Conn {
		c, err := net.Dial("tcp", s.src.addr.String())
		must(t, err)
		t.Cleanup(func() { c.Close() })
		return c
	}
	a, b := dial(), dial()
	if code := rawPost(t, a, "{}"); code != http.StatusOK {
		t.Fatalf("POST on connection 1 = %d, want 200", code)
	}
	if code := rawPost(t, b, "{}"); code != http.StatusOK {
		t.Fatalf("POST on connection 2 = %d, want 200", code)
	}
	c := dial()
	if code := rawPost(t, c, "{}"); code != http.StatusServiceUnavailable {
		t.Fatalf("POST on connection 3 with max_conns 2 = %d, want 503", code)
	}
	<-closed // the server closed connection 3
	a.Close()
	<-closed
	if code := rawPost(t, dial(), "{}"); code != http.StatusOK {
		t.Fatalf("POST on a new connection after one closed = %d, want 200", code)
	}
}

// TestIdleKeepAliveConnectionIsClosed: a keep-alive connection that stays
// idle for idle_timeout is closed by the server.
func TestIdleKeepAliveConnectionIsClosed(t *testing.T) {
	s := start(t, func(c *config) { c.IdleTimeout = 50 * time.Millisecond }, opts{})
	conn, err := net.Dial("tcp", s.src.addr.String())
	must(t, err)
	defer conn.Close()
	if code := rawPost(t, conn, "{}"); code != http.StatusOK {
		t.Fatalf("POST = %d, want 200", code)
	}
	// The deadline is a safety net: the server must hang up long before.
	must(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	if n, err := conn.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("reading an idle connection = %d, %v; want io.EOF (closed by the server)", n, err)
	}
}
