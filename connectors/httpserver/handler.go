package httpserver

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pipe-dsl/pipe/pipeline"
)

// handler serves the source's path: it reads a request, hands its messages
// to the pipeline and answers once each one is resolved.
type handler struct {
	s   *source
	ctx context.Context // the source's soft-stop context
	out pipeline.Outlet
}

var _ http.Handler = (*handler)(nil)

// errBackpressure is the cause of a send that waited accept_timeout.
var errBackpressure = errors.New("pipeline full")

// errHardStop is the error of a send refused by a pipeline that is
// abandoning its messages.
var errHardStop = errors.New("pipeline stopped")

// errDraining is the error of a request that came after the soft stop.
var errDraining = errors.New("shutting down")

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
	if cfg.Auth != "none" && !validToken(r.Header.Get("Authorization"), cfg.Token) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="pipe"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if h.stopping() {
		discardBody(r)
		unavailable(w)
		return
	}
	if overConns(r) {
		discardBody(r)
		w.Header().Set("Connection", "close")
		w.Header().Set("Retry-After", "1")
		http.Error(w, fmt.Sprintf("more than %d connections open", cfg.MaxConns), http.StatusServiceUnavailable)
		return
	}
	if !h.s.limits.acquire() {
		discardBody(r)
		w.Header().Set("Retry-After", "1")
		http.Error(w, fmt.Sprintf("more than %d requests in flight", cfg.MaxRequests), http.StatusTooManyRequests)
		return
	}
	defer h.s.limits.release()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(cfg.MaxBody)))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			http.Error(w, fmt.Sprintf("body exceeds %d bytes", cfg.MaxBody), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "reading body failed", http.StatusBadRequest)
		return
	}
	bodies, nums := [][]byte{body}, []int{1}
	if cfg.Framing == "ndjson" {
		bodies, nums = splitNumbered(body)
		if bad := firstInvalid(bodies); bad >= 0 {
			h.answerInvalid(w, nums, bad)
			return
		}
	}
	if len(body) == 0 || len(bodies) == 0 {
		http.Error(w, "empty body", http.StatusBadRequest)
		return
	}
	req := newRequest(nums)
	h.send(r.Context(), req, bodies, h.s.headerMeta(r))
	if req.wait(r.Context()) != nil {
		return // the client is gone; nobody reads the answer
	}
	h.answer(w, req)
}

// request tracks the messages of one HTTP request.
type request struct {
	mu sync.Mutex
	// errs[i] is the outcome of message i once resolved; nums[i] its line.
	errs []error
	nums []int
	// taken counts the messages that entered the pipeline, a prefix of
	// errs; refused is why the rest did not.
	taken   int
	refused error
	pending int
	done    chan struct{}
}

func newRequest(nums []int) *request {
	return &request{errs: make([]error, len(nums)), nums: nums, done: make(chan struct{})}
}

// ack returns the AckFunc of message i.
func (q *request) ack(i int) pipeline.AckFunc {
	return func(err error) {
		q.mu.Lock()
		defer q.mu.Unlock()
		q.errs[i] = err
		q.release()
	}
}

// release counts one pending resolution done; q.mu is held.
func (q *request) release() {
	if q.pending--; q.pending == 0 {
		close(q.done)
	}
}

// wait returns nil once every taken message is resolved, or the error of
// ctx if the client went away first.
func (q *request) wait(ctx context.Context) error {
	select {
	case <-q.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// send hands bodies to the pipeline in order until one is refused: by
// backpressure, by the stop or because the client went away.
func (h *handler) send(reqCtx context.Context, q *request, bodies [][]byte, meta map[string]string) {
	q.pending = 1 // held by send until it has sent all it will
	defer func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		q.release()
	}()
	if !h.s.gate.enter() {
		q.refused = errDraining
		return
	}
	defer h.s.gate.leave()
	for i, b := range bodies {
		q.mu.Lock()
		q.pending++
		q.mu.Unlock()
		m := pipeline.NewMessage(b, q.ack(i))
		m.Meta = meta // shared, read-only: one map per request, not per line
		m.Created = time.Now()
		// Only the first message may be refused for backpressure, so a 429
		// always means that nothing of the request was taken; the rest
		// wait for room until the stop or until the client goes away.
		if err := h.sendOne(reqCtx, m, i == 0); err != nil {
			// m was nacked by Send; the rest never entered the pipeline.
			q.mu.Lock()
			q.refused = err
			q.mu.Unlock()
			return
		}
		q.mu.Lock()
		q.taken++
		q.mu.Unlock()
	}
}

// sendOne passes m on, giving up at the soft stop, when the client
// disconnects or, if bounded, after accept_timeout.
func (h *handler) sendOne(reqCtx context.Context, m *pipeline.Message, bounded bool) error {
	ctx, cancel := context.WithCancel(reqCtx)
	if bounded {
		ctx, cancel = context.WithTimeoutCause(reqCtx, h.s.cfg.AcceptTimeout, errBackpressure)
	}
	defer cancel()
	stop := context.AfterFunc(h.ctx, cancel)
	defer stop()
	if err := h.out.Send(ctx, m); err != nil {
		if c := context.Cause(ctx); errors.Is(c, errBackpressure) {
			return c
		}
		if h.ctx.Err() != nil {
			return errDraining
		}
		if ctx.Err() == nil {
			h.s.stopOnce.Do(func() { close(h.s.stopped) })
			return errHardStop
		}
		return err
	}
	return nil
}

// stopping reports whether the source is draining.
func (h *handler) stopping() bool {
	select {
	case <-h.s.draining:
		return true
	default:
		return false
	}
}

// discardBody reads what a refused request's body has, up to 256 KiB, so
// the client reads the answer: a server that closes a connection with
// unread data makes the client's TCP stack reset it, losing the answer.
func discardBody(r *http.Request) {
	_, _ = io.CopyN(io.Discard, r.Body, 256<<10)
}

func unavailable(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "5")
	w.Header().Set("Connection", "close")
	http.Error(w, "shutting down", http.StatusServiceUnavailable)
}

// validToken reports whether an Authorization header carries token with the
// Bearer scheme, whose name is case-insensitive (RFC 9110, 11.1). It
// compares in constant time so the token cannot be guessed byte by byte
// from response times; an empty token matches nothing.
func validToken(header, token string) bool {
	scheme, got, ok := strings.Cut(strings.TrimSpace(header), " ")
	got = strings.TrimLeft(got, " ")
	return ok && token != "" && strings.EqualFold(scheme, "Bearer") &&
		subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}
