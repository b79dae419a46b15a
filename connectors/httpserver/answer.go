package httpserver

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/pipe-dsl/pipe/pipeline"
)

// answer is the JSON body of the answer to a request whose messages were
// handed to the pipeline.
type answer struct {
	// Lines is the number of messages in the request.
	Lines int `json:"lines"`
	// Accepted is the number delivered or dead-lettered: these must not be
	// sent again.
	Accepted int `json:"accepted"`
	// Error says why the others were not, if any were not.
	Error string `json:"error,omitempty"`
}

// answer writes the outcome of q, whose messages are all resolved.
func (h *handler) answer(w http.ResponseWriter, q *request) {
	q.mu.Lock()
	defer q.mu.Unlock()
	a := answer{Lines: len(q.errs)}
	var failed error
	for _, err := range q.errs[:q.taken] {
		if err == nil {
			a.Accepted++
		} else if failed == nil || errors.Is(err, pipeline.ErrAbandoned) {
			failed = err
		}
	}
	code := http.StatusOK
	switch {
	case q.refused == nil && failed == nil:
	case errors.Is(q.refused, errBackpressure) && q.taken == 0:
		code = http.StatusTooManyRequests
		w.Header().Set("Retry-After", "1")
		a.Error = "pipeline is full, retry later"
	case q.refused != nil || errors.Is(failed, pipeline.ErrAbandoned):
		code = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", "5")
		w.Header().Set("Connection", "close")
		a.Error = "shutting down"
	default:
		code = http.StatusInternalServerError
		h.s.logger.Warn("request not delivered", "messages", a.Lines-a.Accepted, "err", failed)
		a.Error = "not delivered"
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(a)
}
