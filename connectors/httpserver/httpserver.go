// Package httpserver provides the http_server source: POST requests become
// messages, and each request is answered only once the pipeline has
// delivered or dead-lettered every message it carried.
package httpserver

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/pipeline"
)

type config struct {
	Address           string         `pipe:"address" desc:"host:port to listen on." example:"127.0.0.1:8080"`
	Path              string         `pipe:"path" desc:"URL path that accepts POST requests; a path ending in / also accepts the paths under it. Others answer 404." example:"/ingest"`
	Framing           string         `pipe:"framing" desc:"single: the body is one message; ndjson: each non-blank line is one message." enum:"single,ndjson" example:"ndjson"`
	MaxBody           component.Size `pipe:"max_body" desc:"Largest accepted request body; larger ones are answered 413." example:"1MiB" min:"1"`
	Token             string         `pipe:"token,secret" desc:"If set, requests must carry Authorization: Bearer <token>; others are answered 401." example:"${INGEST_TOKEN}"`
	AcceptTimeout     time.Duration  `pipe:"accept_timeout" desc:"How long a request may wait for room in the pipeline before it is answered 429 (backpressure)." example:"5s" min:"0.001"`
	ReadHeaderTimeout time.Duration  `pipe:"read_header_timeout" desc:"Time allowed to read request headers (slowloris protection)." example:"10s" min:"0.001"`
	ReadTimeout       time.Duration  `pipe:"read_timeout" desc:"Time allowed to read a whole request, body included." example:"1m" min:"0.001"`
	IdleTimeout       time.Duration  `pipe:"idle_timeout" desc:"How long an idle keep-alive connection stays open." example:"2m" min:"0.001"`
}

func defaults() config {
	return config{
		Address:           "127.0.0.1:8080",
		Path:              "/",
		Framing:           "single",
		MaxBody:           1 << 20,
		AcceptTimeout:     5 * time.Second,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
	}
}

func init() {
	component.Register(component.Source("http_server",
		"Accepts POSTed messages (one per body, or NDJSON) and answers each request after the pipeline has delivered them: 200 when all were acked, 500 when one failed, 429 under backpressure, 503 while draining.",
		defaults(), newSource))
}

// source is the http_server source. Its server starts in Read.
type source struct {
	cfg    config
	logger *slog.Logger

	// ready is closed once the listener is bound; addr is valid after it.
	ready chan struct{}
	addr  net.Addr
	// draining is closed when Read stops accepting requests.
	draining chan struct{}
	// stopped is closed (once, via stopOnce) when a Send fails although
	// neither the request nor the soft stop ended: the pipeline's hard stop.
	stopped  chan struct{}
	stopOnce sync.Once
	// connState, if set, is the server's ConnState hook (tests).
	connState func(net.Conn, http.ConnState)
}

var _ pipeline.Source = (*source)(nil)

func newSource(c *config, env component.Env) (pipeline.Source, error) {
	if !strings.HasPrefix(c.Path, "/") {
		return nil, errors.New("path must start with /")
	}
	logger := env.Logger
	if logger == nil {
		logger = slog.Default()
	}
	return &source{cfg: *c, logger: logger.With("source", "http_server", "node", env.Node), ready: make(chan struct{}), draining: make(chan struct{}), stopped: make(chan struct{})}, nil
}

// Read serves until ctx is cancelled. Then new requests are answered 503
// and Read returns; requests already accepted are answered once their
// messages are resolved, which happens before the pipeline's Run returns.
func (s *source) Read(ctx context.Context, out pipeline.Outlet) error {
	ln, err := net.Listen("tcp", s.cfg.Address)
	if err != nil {
		return fmt.Errorf("http_server: listen %s: %w", s.cfg.Address, err)
	}
	s.addr = ln.Addr()
	close(s.ready)
	s.logger.Info("listening", "address", s.addr.String(), "path", s.cfg.Path)
	srv := &http.Server{
		Handler:           &handler{s: s, ctx: ctx, out: out},
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ConnState:         s.connState,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelDebug),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		return fmt.Errorf("http_server: %w", err)
	case <-ctx.Done():
	case <-s.stopped:
	}
	close(s.draining)
	// Shutdown waits for the handlers, which wait for acks that come only
	// as the pipeline drains: let it finish on its own.
	go func() {
		_ = srv.Shutdown(context.Background())
		<-serveErr
	}()
	return nil
}

type handler struct {
	s   *source
	ctx context.Context // the source's soft-stop context
	out pipeline.Outlet
}

// errBackpressure is the cause of a send that waited accept_timeout.
var errBackpressure = errors.New("pipeline full")

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cfg := &h.s.cfg
	if p := r.URL.Path; p != cfg.Path && !(strings.HasSuffix(cfg.Path, "/") && strings.HasPrefix(p, cfg.Path)) {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if cfg.Token != "" && !validToken(r.Header.Get("Authorization"), cfg.Token) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="pipe"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if h.stopping(w) {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(cfg.MaxBody)))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			http.Error(w, fmt.Sprintf("body exceeds %d bytes", cfg.MaxBody), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "reading body failed", http.StatusBadRequest)
		return
	}
	var bodies [][]byte
	if cfg.Framing == "ndjson" {
		bodies = SplitNDJSON(body)
	} else if len(body) > 0 {
		bodies = [][]byte{body}
	}
	if len(bodies) == 0 {
		http.Error(w, "empty body", http.StatusBadRequest)
		return
	}
	if h.stopping(w) {
		return
	}
	meta := headerMeta(r)
	res := h.send(r.Context(), bodies, meta)
	switch {
	case res.err == nil:
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, "{\"accepted\":%d}\n", len(bodies))
	case errors.Is(res.err, errBackpressure):
		w.Header().Set("Retry-After", "1")
		http.Error(w, "pipeline is full, retry later", http.StatusTooManyRequests)
	case h.ctx.Err() != nil || errors.Is(res.err, pipeline.ErrAbandoned) || errors.Is(res.err, errHardStop):
		unavailable(w)
	case r.Context().Err() != nil:
		// The client is gone; nobody reads the answer.
	default:
		h.s.logger.Warn("request not delivered", "messages", len(bodies), "err", res.err)
		http.Error(w, "not delivered", http.StatusInternalServerError)
	}
}

type result struct{ err error }

// send hands bodies to the pipeline and waits until every one is resolved,
// the client goes away or accepting one takes longer than accept_timeout.
// The first error wins.
func (h *handler) send(reqCtx context.Context, bodies [][]byte, meta map[string]string) result {
	var (
		mu      sync.Mutex
		first   error
		pending = len(bodies)
		done    = make(chan struct{})
	)
	ack := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil && first == nil {
			first = err
		}
		if pending--; pending == 0 {
			close(done)
		}
	}
	for i, b := range bodies {
		m := pipeline.NewMessage(b, ack)
		m.Meta = meta
		if i < len(bodies)-1 {
			m.Meta = maps.Clone(meta)
		}
		m.Created = time.Now()
		if err := h.sendOne(reqCtx, m); err != nil {
			// m was nacked by Send; the rest never entered the pipeline.
			mu.Lock()
			pending -= len(bodies) - i - 1
			if first == nil || errors.Is(err, errBackpressure) {
				first = err
			}
			mu.Unlock()
			return result{err: err}
		}
	}
	select {
	case <-done:
	case <-reqCtx.Done():
		return result{err: reqCtx.Err()}
	}
	mu.Lock()
	defer mu.Unlock()
	return result{err: first}
}

// sendOne passes m on, giving up after accept_timeout, at the soft stop or
// when the client disconnects.
func (h *handler) sendOne(reqCtx context.Context, m *pipeline.Message) error {
	ctx, cancel := context.WithTimeoutCause(reqCtx, h.s.cfg.AcceptTimeout, errBackpressure)
	defer cancel()
	stop := context.AfterFunc(h.ctx, cancel)
	defer stop()
	if err := h.out.Send(ctx, m); err != nil {
		if c := context.Cause(ctx); errors.Is(c, errBackpressure) {
			return c
		}
		if ctx.Err() == nil {
			h.s.stopOnce.Do(func() { close(h.s.stopped) })
			return errHardStop
		}
		return err
	}
	return nil
}

// errHardStop is the error of a send refused by a pipeline that is
// abandoning its messages.
var errHardStop = errors.New("pipeline stopped")

// stopping answers 503 if the source is draining.
func (h *handler) stopping(w http.ResponseWriter) bool {
	select {
	case <-h.s.draining:
		unavailable(w)
		return true
	default:
		return false
	}
}

func unavailable(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "5")
	w.Header().Set("Connection", "close")
	http.Error(w, "shutting down", http.StatusServiceUnavailable)
}

// validToken compares in constant time so the token cannot be guessed
// byte by byte from response times.
func validToken(header, token string) bool {
	got, ok := strings.CutPrefix(header, "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

// hiddenHeaders never reach message metadata: credentials, and transport
// headers that describe the request rather than one message of it.
var hiddenHeaders = map[string]bool{
	"Authorization": true, "Proxy-Authorization": true, "Cookie": true,
	"Content-Length": true, "Connection": true, "Keep-Alive": true, "Te": true,
	"Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

// headerMeta returns the request headers as metadata with lower-case keys
// (traceparent stays traceparent), repeated values joined by ", ".
func headerMeta(r *http.Request) map[string]string {
	meta := make(map[string]string, len(r.Header)+2)
	for k, v := range r.Header {
		if hiddenHeaders[k] {
			continue
		}
		meta[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	meta["http_path"] = r.URL.Path
	meta["http_remote_addr"] = r.RemoteAddr
	return meta
}
