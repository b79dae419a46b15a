// Package live serves a running pipeline to people and tools: the live
// graph page, the stats API and its event stream, and message taps.
package live

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pipe-dsl/pipe/dsl"
	"github.com/pipe-dsl/pipe/pipeline"
)

// DefaultInterval is how often a [Server] takes a snapshot and pushes it
// to the event streams.
const DefaultInterval = 500 * time.Millisecond

// Current is what the server shows: the running pipeline and its drawing.
// It is called per request, so a reloaded pipeline (pipe run --watch) is
// picked up.
type Current func() (*pipeline.Pipeline, Graph)

// Graph is the drawing of a pipeline: its name and what [dsl.GraphOf]
// returns.
type Graph struct {
	Name  string
	Nodes []dsl.GraphNode
	Edges []dsl.GraphEdge
}

// Options configure a [Server].
type Options struct {
	// Token, if set, is required (Authorization: Bearer, or ?token=) by
	// every endpoint but /metrics, /healthz and /readyz.
	Token string
	// Public marks a server listening on a non-loopback address: without
	// a Token it serves only /metrics, /healthz and /readyz.
	Public bool
	// Interval between snapshots; zero means DefaultInterval.
	Interval time.Duration
	// Filter compiles a tap's --filter expression; nil refuses filters.
	Filter func(expr string) (func(body []byte) (bool, error), error)
	// Redact hides secret values in tapped messages; nil leaves them.
	Redact func(string) string
	// TapBuffer is how many messages a tap holds for a slow reader before
	// it skips; zero means DefaultTapBuffer.
	TapBuffer int
}

// Server serves the live page, /api/v1/* and taps beside an existing
// handler for /metrics, /healthz and /readyz. Build it with New, start its
// sampler with Run, and call Close before shutting the HTTP server down so
// that streams end. It changes nothing in the pipeline: every endpoint is
// a GET.
type Server struct {
	cur  Current
	opts Options

	latest  atomic.Pointer[Snapshot]
	mu      sync.Mutex
	updated chan struct{} // closed and replaced at every snapshot
	done    chan struct{} // closed by Close; ends streams
	close   sync.Once

	shown    *pipeline.Pipeline // the pipeline last seen; under mu
	replaced chan struct{}      // closed when shown is replaced; under mu
	restart  bool               // shown was replaced since the last snapshot; under mu

	onTap func() // test hook: called once a tap is attached
}

// New returns a server showing cur. It starts nothing.
func New(cur Current, opts Options) *Server {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.TapBuffer <= 0 {
		opts.TapBuffer = DefaultTapBuffer
	}
	return &Server{cur: cur, opts: opts, updated: make(chan struct{}), done: make(chan struct{}), replaced: make(chan struct{})}
}

// Run takes a snapshot every interval until ctx ends or Close is called.
func (s *Server) Run(ctx context.Context) {
	t := time.NewTicker(s.opts.Interval)
	defer t.Stop()
	s.sample(time.Now())
	for {
		select {
		case now := <-t.C:
			s.sample(now)
		case <-ctx.Done():
			return
		case <-s.done:
			return
		}
	}
}

// Close ends every event stream and tap; the HTTP server can then shut
// down at once.
func (s *Server) Close() { s.close.Do(func() { close(s.done) }) }

// sample takes a snapshot. A reloaded pipeline (pipe run --watch) starts
// its counters afresh, so its first snapshot has no rates, and the taps of
// the old one end.
func (s *Server) sample(now time.Time) {
	p, g := s.cur()
	prev := s.latest.Load()
	seq := uint64(1)
	if prev != nil {
		seq = prev.Seq + 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.see(p) {
		prev = nil
	}
	s.latest.Store(snapshot(g.Name, seq, now, p.Stats(), prev))
	close(s.updated)
	s.updated = make(chan struct{})
}

// see records p as the pipeline shown; if it replaces another, it ends
// that one's taps and reports true until a snapshot has been taken of p
// (sample passes no previous snapshot, so rates restart). s.mu must be
// held.
func (s *Server) see(p *pipeline.Pipeline) (restarted bool) {
	if s.shown != nil && s.shown != p {
		close(s.replaced)
		s.replaced = make(chan struct{})
		s.restart = true
	}
	s.shown = p
	restarted, s.restart = s.restart, false
	return restarted
}

// pipelineNow returns the current pipeline and a channel closed once it
// is replaced.
func (s *Server) pipelineNow() (*pipeline.Pipeline, <-chan struct{}) {
	p, _ := s.cur()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.see(p) {
		s.restart = true // keep it for sample
	}
	return p, s.replaced
}

// next returns the latest snapshot and a channel closed at the next one.
func (s *Server) next() (*Snapshot, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.latest.Load(), s.updated
}

// Handler serves the live endpoints, and metrics (the exporter's handler)
// at /metrics, /healthz and /readyz.
func (s *Server) Handler(metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	for _, p := range []string{"GET /metrics", "GET /healthz", "GET /readyz"} {
		mux.Handle(p, metrics)
	}
	mux.Handle("GET /{$}", s.guard(http.HandlerFunc(s.page)))
	mux.Handle("GET /api/v1/stats", s.guard(http.HandlerFunc(s.stats)))
	mux.Handle("GET /api/v1/stats/stream", s.guard(http.HandlerFunc(s.stream)))
	mux.Handle("GET /api/v1/graph", s.guard(http.HandlerFunc(s.graph)))
	mux.Handle("GET /api/v1/nodes/{node}/errors", s.guard(http.HandlerFunc(s.errors)))
	mux.Handle("GET /api/v1/tap/{node}", s.guard(http.HandlerFunc(s.tap)))
	return mux
}

// guard refuses requests the options do not allow: any on a public
// address without a token, and those without the token when one is set.
func (s *Server) guard(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case s.opts.Token == "" && s.opts.Public:
			http.Error(w, "pipe: this server listens on a non-loopback address without --http-token (or PIPE_HTTP_TOKEN): only /metrics, /healthz and /readyz are served", http.StatusForbidden)
		case s.opts.Token != "" && !tokenOK(r, s.opts.Token):
			w.Header().Set("WWW-Authenticate", `Bearer realm="pipe"`)
			http.Error(w, "pipe: a token is required (Authorization: Bearer TOKEN, or ?token=TOKEN)", http.StatusUnauthorized)
		default:
			h.ServeHTTP(w, r)
		}
	})
}

func tokenOK(r *http.Request, token string) bool {
	got := r.URL.Query().Get("token")
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		got = strings.TrimSpace(h[7:])
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

// current returns the latest snapshot, taking one if none was taken yet.
func (s *Server) current() *Snapshot {
	if snap := s.latest.Load(); snap != nil {
		return snap
	}
	p, g := s.cur()
	return snapshot(g.Name, 0, time.Now(), p.Stats(), nil)
}

func (s *Server) stats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, s.current())
}

// stream sends every snapshot as a Server-Sent Event until the client
// leaves or the server closes.
func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "pipe: streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	snap, updated := s.next()
	if snap == nil {
		snap = s.current()
	}
	for {
		b, _ := json.Marshal(snap)
		if _, err := w.Write(append(append([]byte("data: "), b...), '\n', '\n')); err != nil {
			return
		}
		fl.Flush()
		select {
		case <-updated:
			snap, updated = s.next()
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		}
	}
}

func (s *Server) graph(w http.ResponseWriter, _ *http.Request) {
	_, g := s.cur()
	writeJSON(w, graphJSON(g))
}

func (s *Server) errors(w http.ResponseWriter, r *http.Request) {
	p, _ := s.cur()
	errs, ok := p.RecentErrors(r.PathValue("node"))
	if !ok {
		http.Error(w, "pipe: no node named "+quote(r.PathValue("node")), http.StatusNotFound)
		return
	}
	type entry struct {
		Time   time.Time `json:"time"`
		Reason string    `json:"reason"`
		Error  string    `json:"error"`
	}
	out := make([]entry, len(errs))
	for i, e := range errs {
		out[i] = entry{e.Time, e.Reason, s.redact(e.Error)}
	}
	writeJSON(w, out)
}

func (s *Server) redact(v string) string {
	if s.opts.Redact == nil {
		return v
	}
	return s.opts.Redact(v)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

func quote(s string) string { b, _ := json.Marshal(s); return string(b) }
