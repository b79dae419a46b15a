package httpserver

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/pipe-dsl/pipe/pipeline"
)

// answer is the JSON body of the answer to a request that was read.
//
// A client resends exactly the lines in Rejected, never the others: those
// were delivered or dead-lettered.
type answer struct {
	// Lines is the number of messages in the request.
	Lines int `json:"lines"`
	// Accepted is the number delivered or dead-lettered.
	Accepted int `json:"accepted"`
	// Rejected holds the body's line numbers (1-based, blank lines
	// counted) of the messages not accepted, as [first, last] ranges; at
	// most maxRanges of them, Truncated saying whether more were left off.
	Rejected  [][2]int `json:"rejected,omitempty"`
	Truncated bool     `json:"truncated,omitempty"`
	// Error says why they were not accepted.
	Error string `json:"error,omitempty"`
}

// maxRanges bounds the Rejected ranges of one answer.
const maxRanges = 1000

// payloadReasons are the dead-letter reasons that blame the message, not
// the pipeline: a request whose failures all have one is answered 422.
var payloadReasons = []string{pipeline.ReasonInvalidPayload, pipeline.ReasonExpression}

// answer writes the outcome of q, whose taken messages are all resolved.
func (h *handler) answer(w http.ResponseWriter, q *request) {
	q.mu.Lock()
	defer q.mu.Unlock()
	a := answer{Lines: len(q.errs)}
	var (
		reasons   []string
		first     error
		abandoned bool
		blamed    = true // every failure blames the payload
	)
	for i, err := range q.errs {
		follows := i > 0 && (i > q.taken || q.errs[i-1] != nil)
		switch {
		case i >= q.taken:
			a.reject(q.nums[i], follows)
		case err == nil:
			a.Accepted++
		default:
			a.reject(q.nums[i], follows)
			first = cmp.Or(first, err)
			r := pipeline.Reason(err)
			abandoned = abandoned || errors.Is(err, pipeline.ErrAbandoned)
			blamed = blamed && slices.Contains(payloadReasons, r)
			if !slices.Contains(reasons, r) {
				reasons = append(reasons, r)
			}
		}
	}
	code := http.StatusOK
	switch {
	case a.Accepted == a.Lines:
	case errors.Is(q.refused, errBackpressure):
		// Only the first message can meet it: nothing was taken.
		code = http.StatusTooManyRequests
		w.Header().Set("Retry-After", "1")
		a.Error = "pipeline is full, retry later"
	case q.refused != nil || abandoned:
		code = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", "5")
		w.Header().Set("Connection", "close")
		a.Error = "shutting down"
	case blamed:
		code = http.StatusUnprocessableEntity
		a.Error = fmt.Sprintf("%d lines failed: %s", a.Lines-a.Accepted, strings.Join(reasons, ", "))
	default:
		code = http.StatusInternalServerError
		h.s.logger.Warn("request not delivered", "messages", a.Lines-a.Accepted, "reasons", reasons, "err", first)
		a.Error = fmt.Sprintf("%d lines not delivered: %s", a.Lines-a.Accepted, strings.Join(reasons, ", "))
	}
	writeAnswer(w, code, &a)
}

// answerInvalid refuses a request whose message bad is not JSON; nothing
// of it is taken.
func (h *handler) answerInvalid(w http.ResponseWriter, nums []int, bad int) {
	a := answer{Lines: len(nums), Rejected: [][2]int{{nums[0], nums[len(nums)-1]}},
		Error: fmt.Sprintf("line %d is not JSON; no line was taken", nums[bad])}
	writeAnswer(w, http.StatusBadRequest, &a)
}

func writeAnswer(w http.ResponseWriter, code int, a *answer) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(a)
}

// reject adds line n, which comes after every line added before; follows
// says whether the message before it was rejected too.
func (a *answer) reject(n int, follows bool) {
	if k := len(a.Rejected); k > 0 && follows && !a.Truncated {
		a.Rejected[k-1][1] = n
		return
	}
	if len(a.Rejected) == maxRanges {
		a.Truncated = true
		return
	}
	a.Rejected = append(a.Rejected, [2]int{n, n})
}

// firstInvalid returns the index of the first body that is not JSON, or -1.
func firstInvalid(bodies [][]byte) int {
	for i, b := range bodies {
		if !json.Valid(b) {
			return i
		}
	}
	return -1
}
