// Command flaky is a small HTTP endpoint that fails some requests, for
// trying the http sink with retries and a circuit breaker:
//
//	go run ./examples/flaky -addr 127.0.0.1:8089 -fail-first 5 -fail-rate 0.2
//
// It accepts POST and PUT on any path, failing the first -fail-first
// requests and then a seeded random -fail-rate share of them with -status
// (503 by default, with Retry-After: 1). A JSON array body counts as one
// message per element, an NDJSON body as one per line. GET /stats returns
// the counts as JSON.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8089", "listen address")
	failFirst := flag.Int("fail-first", 0, "fail this many requests first")
	failRate := flag.Float64("fail-rate", 0, "then fail this share of requests (0..1)")
	status := flag.Int("status", http.StatusServiceUnavailable, "status of a failed request")
	seed := flag.Uint64("seed", 1, "seed of the fail-rate draws")
	flag.Parse()

	s := newServer(*failFirst, *failRate, *status, *seed)
	s.logf = log.Printf
	srv := &http.Server{Addr: *addr, Handler: s, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shut)
	}()
	log.Printf("flaky: listening on %s (fail first %d, then %.0f%% with %d)", *addr, *failFirst, *failRate*100, *status)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
	log.Printf("flaky: %+v", s.snapshot())
}

// stats are the counts GET /stats returns.
type stats struct {
	// Accepted and Rejected count requests; Messages counts the messages
	// in accepted requests.
	Accepted int `json:"accepted"`
	Rejected int `json:"rejected"`
	Messages int `json:"messages"`
}

// server fails requests on the same schedule as the chaos sink. It is safe
// for concurrent use.
type server struct {
	failFirst int
	failRate  float64
	status    int
	logf      func(format string, args ...any)

	mu       sync.Mutex
	rng      *rand.Rand
	requests int
	st       stats
}

func newServer(failFirst int, failRate float64, status int, seed uint64) *server {
	return &server{failFirst: failFirst, failRate: failRate, status: status,
		rng: rand.New(rand.NewPCG(seed, seed)), logf: func(string, ...any) {}}
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/stats":
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s.snapshot())
		return
	case r.Method != http.MethodPost && r.Method != http.MethodPut:
		http.Error(w, "POST or PUT a JSON body, or GET /stats", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	n := countMessages(body)
	s.mu.Lock()
	s.requests++
	fail := s.requests <= s.failFirst || (s.failRate > 0 && s.rng.Float64() < s.failRate)
	if fail {
		s.st.Rejected++
	} else {
		s.st.Accepted++
		s.st.Messages += n
	}
	st := s.st
	s.mu.Unlock()
	if fail {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "flaky: try again", s.status)
		return
	}
	s.logf("flaky: accepted %d messages (%d requests, %d rejected)", n, st.Accepted, st.Rejected)
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"accepted":` + strconv.Itoa(n) + "}\n"))
}

func (s *server) snapshot() stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

// countMessages counts the elements of a JSON array body, the lines of an
// NDJSON body, or 1.
func countMessages(b []byte) int {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '[' {
		var xs []json.RawMessage
		if json.Unmarshal(b, &xs) == nil {
			return len(xs)
		}
	}
	if n := bytes.Count(b, []byte("\n")); n > 0 {
		return n + 1
	}
	return 1
}
