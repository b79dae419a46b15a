package stages_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

// tierServer answers GET /customers/N with {"tier": ...} (404 for N > 100),
// or 503 while down is set; it counts the requests it received.
type tierServer struct {
	*httptest.Server
	down     atomic.Bool
	requests atomic.Int64
}

func newTierServer(t *testing.T) *tierServer {
	s := &tierServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if s.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		var id int
		if _, err := fmt.Sscanf(r.URL.Path, "/customers/%d", &id); err != nil || id > 100 {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, `{"tier": "t%d"}`, id)
	}))
	t.Cleanup(s.Close)
	return s
}

// stepSource sends each body it receives on ch until ch is closed.
type stepSource struct{ ch chan string }

func (s stepSource) Read(ctx context.Context, out pipeline.Outlet) error {
	for b := range s.ch {
		if out.Send(ctx, pipeline.NewMessage([]byte(b), nil)) != nil {
			return nil
		}
	}
	return nil
}

// stepped runs a lookup pipeline on a fake clock, fed one body at a time.
type stepped struct {
	t        *testing.T
	clock    *pipelinetest.FakeClock
	src      stepSource
	out, dlq *pipelinetest.Sink
	done     chan error
}

func startStepped(t *testing.T, name, stages string) *stepped {
	s := &stepped{t: t, clock: pipelinetest.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
		src: stepSource{ch: make(chan string)}, done: make(chan error, 1)}
	c, out, dlq := compileLookupWith(t, name, stages, s.clock, s.src)
	s.out, s.dlq = out, dlq
	go func() { s.done <- c.Run(context.Background()) }()
	return s
}

// send sends body and waits until the sink and dead-letter sink together
// hold total messages.
func (s *stepped) send(body string, total int) {
	s.src.ch <- body
	deadline := time.Now().Add(10 * time.Second)
	for s.out.Writes()+s.dlq.Writes() < total {
		if time.Now().After(deadline) {
			s.t.Fatalf("after sending %s: %d written, want %d", body, s.out.Writes()+s.dlq.Writes(), total)
		}
		time.Sleep(time.Millisecond)
	}
}

func (s *stepped) stop() {
	close(s.src.ch)
	if err := <-s.done; err != nil {
		s.t.Fatal(err)
	}
}

func TestLookupHTTPThousandMessagesOneKeyMakeOneRequest(t *testing.T) {
	srv := newTierServer(t)
	r := runLookup(t, "lk_hsingle", fmt.Sprintf(`  - lookup:
      http: {url: '"%s/customers/" + string(key)'}
      key: msg.customer_id
      into: customer
      cache: {ttl: 1h}
    workers: 64`, srv.URL), orders(1000, func(int) int { return 9 })...)
	if len(r.out) != 1000 {
		t.Fatalf("sink got %d, want 1000 (dead letters %+v)", len(r.out), r.dls)
	}
	if n := srv.requests.Load(); n != 1 {
		t.Fatalf("server got %d requests, want 1", n)
	}
	if !strings.Contains(r.out[0], `"customer":{"tier":"t9"}`) {
		t.Fatalf("body = %s, want customer t9", r.out[0])
	}
}

func TestLookupHTTPNotFoundIsMissing(t *testing.T) {
	srv := newTierServer(t)
	r := runLookup(t, "lk_h404", fmt.Sprintf(`  - lookup:
      http: {url: '"%s/customers/" + string(msg.customer_id)'}
      into: customer
      on_missing: dead_letter`, srv.URL), `{"customer_id":500}`, `{"customer_id":5}`)
	if len(r.out) != 1 || len(r.dls) != 1 || r.dls[0].Reason != "lookup_missing" {
		t.Fatalf("sink %q, dead letters %+v; want 1 and 1 lookup_missing", r.out, r.dls)
	}
}

// Given a breaker with on_open dead_letter, when the store fails, then the
// first message fails with the store's error and the following ones with
// circuit_open, without reaching the store.
func TestLookupHTTPBreakerOpenDeadLetters(t *testing.T) {
	srv := newTierServer(t)
	srv.down.Store(true)
	r := runLookup(t, "lk_hdl", fmt.Sprintf(`  - lookup:
      http: {url: '"%s/customers/" + string(msg.customer_id)'}
      into: customer
    breaker: {failure_threshold: 1, recovery_timeout: 1h, on_open: dead_letter}`, srv.URL),
		orders(5, func(i int) int { return i + 1 })...)
	var reasons []string
	for _, dl := range r.dls {
		reasons = append(reasons, dl.Reason)
	}
	want := []string{"error", "circuit_open", "circuit_open", "circuit_open", "circuit_open"}
	if !slices.Equal(reasons, want) {
		t.Fatalf("reasons = %q, want %q", reasons, want)
	}
	if n := srv.requests.Load(); n != 1 {
		t.Fatalf("server got %d requests, want 1", n)
	}
}

// Given a breaker with on_open block, when the store fails, then the next
// message waits (nothing is dead-lettered) until the breaker lets a probe
// through after recovery_timeout, and the probe's success delivers it.
func TestLookupHTTPBreakerOpenBlocksUntilRecovery(t *testing.T) {
	srv := newTierServer(t)
	s := startStepped(t, "lk_hblock", fmt.Sprintf(`  - lookup:
      http: {url: '"%s/customers/" + string(msg.customer_id)'}
      into: customer
    breaker: {failure_threshold: 1, recovery_timeout: 1m, on_open: block}`, srv.URL))
	srv.down.Store(true)
	s.send(`{"customer_id":1}`, 1) // fails and opens the breaker
	s.src.ch <- `{"customer_id":2}`
	s.clock.WaitTimers(1) // blocked on the open breaker
	if s.out.Writes() != 0 || s.dlq.Writes() != 1 || srv.requests.Load() != 1 {
		t.Fatalf("while open: %d out, %d dead, %d requests; want 0, 1, 1", s.out.Writes(), s.dlq.Writes(), srv.requests.Load())
	}
	srv.down.Store(false)
	s.clock.Advance(time.Minute)
	for s.out.Writes() < 1 {
		time.Sleep(time.Millisecond)
	}
	s.stop()
	if got := s.out.Bodies(); len(got) != 1 || !strings.Contains(got[0], `"tier":"t2"`) {
		t.Fatalf("sink = %q, want customer 2 enriched", got)
	}
}

// Given serve_stale, when the store is down after an entry expired, then
// the expired entry answers and is counted.
func TestLookupHTTPServesStaleWhileStoreIsDown(t *testing.T) {
	srv := newTierServer(t)
	s := startStepped(t, "lk_hstale", fmt.Sprintf(`  - lookup:
      http: {url: '"%s/customers/" + string(msg.customer_id)'}
      key: msg.customer_id
      into: customer
      cache: {ttl: 1m, serve_stale: true}`, srv.URL))
	s.send(`{"customer_id":4}`, 1)
	srv.down.Store(true)
	s.clock.Advance(2 * time.Minute)
	s.send(`{"customer_id":4}`, 2)
	s.send(`{"customer_id":5}`, 3) // nothing cached: fails
	s.stop()
	if got := s.out.Bodies(); len(got) != 2 || got[1] != got[0] {
		t.Fatalf("sink = %q, want the same enrichment twice", got)
	}
	if s.dlq.Writes() != 1 || srv.requests.Load() != 3 {
		t.Fatalf("%d dead letters, %d requests; want 1 and 3", s.dlq.Writes(), srv.requests.Load())
	}
}

// Given timeout on the stage, when the store does not answer, then the
// round trip is cut at the timeout and its messages are dead-lettered
// with reason timeout.
func TestLookupHTTPTimeoutCutsTheRoundTrip(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // hold the request until the client gives up
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	r := runLookup(t, "lk_htimeout", fmt.Sprintf(`  - lookup:
      http: {url: '"%s/customers/" + string(msg.customer_id)'}
      into: customer
    timeout: 50ms`, srv.URL), `{"customer_id":1}`)
	if len(r.dls) != 1 || r.dls[0].Reason != pipeline.ReasonTimeout {
		t.Fatalf("dead letters = %+v, want one with reason timeout", r.dls)
	}
}
