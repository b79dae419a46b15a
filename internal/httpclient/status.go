package httpclient

import (
	"fmt"
	"net/http"
	"time"
)

// StatusError is a response whose status is not 2xx. Retry policies use
// Retryable; the chaos sink returns it too, so faults it injects are
// classified like real ones.
type StatusError struct {
	Code int
	// Body is the start of the response body, with the bearer token
	// redacted.
	Body string
	// RetryAfter is the delay the Retry-After header asked for; zero if
	// it was absent.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	s := fmt.Sprintf("http status %d %s", e.Code, http.StatusText(e.Code))
	if e.Body != "" {
		s += ": " + e.Body
	}
	return s
}

// Retryable reports whether the same request may succeed later: for 408
// Request Timeout, 429 Too Many Requests and every 5xx. Other statuses
// (400, 401, 404, 422, ...) fail the same way again.
func (e *StatusError) Retryable() bool {
	return e.Code == http.StatusRequestTimeout || e.Code == http.StatusTooManyRequests || e.Code >= 500
}

// RetryDelay is RetryAfter, for policies that look for the method.
func (e *StatusError) RetryDelay() time.Duration { return e.RetryAfter }

// StatusCode is Code, for classifiers that match any error carrying a
// status through interface{ StatusCode() int }.
func (e *StatusError) StatusCode() int { return e.Code }
