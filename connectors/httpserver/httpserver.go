// Package httpserver provides the http_server source: POST requests become
// messages, and each request is answered only once the pipeline has
// delivered or dead-lettered every message it carried.
package httpserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	Auth              string         `pipe:"auth" desc:"bearer: requests must carry Authorization: Bearer <token> (the scheme in any case), others are answered 401, and an empty token is refused at validate; none: no authentication, said explicitly." enum:"bearer,none" example:"bearer"`
	Token             string         `pipe:"token,secret" desc:"The bearer token, required with auth: bearer and refused with auth: none." example:"${INGEST_TOKEN}"`
	AcceptTimeout     time.Duration  `pipe:"accept_timeout" desc:"How long a request may wait for room in the pipeline before it is answered 429 (backpressure)." example:"5s" min:"0.001"`
	ReadHeaderTimeout time.Duration  `pipe:"read_header_timeout" desc:"Time allowed to read request headers (slowloris protection)." example:"10s" min:"0.001"`
	ReadTimeout       time.Duration  `pipe:"read_timeout" desc:"Time allowed to read a whole request, body included." example:"1m" min:"0.001"`
	IdleTimeout       time.Duration  `pipe:"idle_timeout" desc:"How long an idle keep-alive connection stays open." example:"30s" min:"0.001"`
	MaxConns          int            `pipe:"max_conns" desc:"Connections open at once; a request on a connection beyond them is answered 503 and the connection closed." example:"256" min:"1"`
	MaxRequests       int            `pipe:"max_requests" desc:"Requests read or handed on at once; more are answered 429 before their body is read, so bodies in memory stay under max_requests x max_body." example:"64" min:"1"`
	MetaHeaders       []string       `pipe:"meta_headers" desc:"Request headers copied into message metadata, with lower-case names; no other header reaches metadata, dead letters or outgoing broker headers. Credentials (Authorization, Cookie) and transport headers are refused." example:"[traceparent, x-tenant]"`
}

func defaults() config {
	return config{
		Address:           "127.0.0.1:8080",
		Path:              "/",
		Framing:           "single",
		Auth:              "bearer",
		MaxBody:           1 << 20,
		AcceptTimeout:     5 * time.Second,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       30 * time.Second,
		MaxConns:          256,
		MaxRequests:       64,
		MetaHeaders:       []string{"traceparent", "tracestate", "baggage", "x-request-id", "content-type"},
	}
}

func init() {
	component.Register(component.Source("http_server",
		"Accepts POSTed messages (one per body, or NDJSON) and answers each request after the pipeline has resolved them, with a JSON body naming the lines not taken: 200 when all were delivered, 400 for a line that is not JSON, 422 or 500 when lines failed, 429 (nothing taken) under backpressure, 503 while draining.",
		defaults(), newSource))
}

// source is the http_server source. Its server starts in Read.
type source struct {
	cfg    config
	logger *slog.Logger
	// meta maps each canonical name of meta_headers to its metadata key.
	meta map[string]string

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
	// limits bounds connections and requests in flight.
	limits limits

	// gate admits handlers into their sending phase until the stop; Read
	// waits for those admitted before it returns, because the runtime closes
	// the channels behind the outlet once Read has returned.
	gate sendGate
}

var _ pipeline.Source = (*source)(nil)

func newSource(c *config, env component.Env) (pipeline.Source, error) {
	if !strings.HasPrefix(c.Path, "/") {
		return nil, errors.New("path must start with /")
	}
	switch {
	case c.Auth == "bearer" && c.Token == "":
		return nil, errors.New("token is empty: an empty token would accept every request; set token (for example \"${INGEST_TOKEN}\"), or auth: none to accept requests without authentication")
	case c.Auth == "none" && c.Token != "":
		return nil, errors.New("token is set but auth is none: remove one of them")
	}
	meta, err := metaKeys(c.MetaHeaders)
	if err != nil {
		return nil, err
	}
	logger := env.Logger
	if logger == nil {
		logger = slog.Default()
	}
	return &source{cfg: *c, meta: meta, logger: logger.With("source", "http_server", "node", env.Node),
		limits: newLimits(c.MaxConns, c.MaxRequests),
		ready:  make(chan struct{}), draining: make(chan struct{}), stopped: make(chan struct{})}, nil
}

// Read serves until ctx is cancelled. Then new requests are answered 503,
// requests still handing messages on stop doing so (their answer is 503 and
// says how many lines were taken), and Read returns once none is inside
// [pipeline.Outlet.Send]. Requests already accepted are answered once their
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
		ConnContext:       s.limits.connContext,
		ConnState:         s.limits.connState(s.connState),
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
	// Handlers still sending see the stop and give up at once; once they
	// are out, none can send again, and only then does draining say so.
	s.gate.close()
	close(s.draining)
	// No new connections, and idle keep-alive ones close. Requests on the
	// open ones are answered (503 now, or once their messages resolve) and
	// their connections closed; only then does Shutdown run: net/http drops
	// a request whose headers it read after Shutdown began, unanswered.
	_ = ln.Close()
	srv.SetKeepAlivesEnabled(false)
	go func() {
		<-serveErr
		s.limits.awaitNoConns()
		_ = srv.Shutdown(context.Background())
	}()
	return nil
}
