package resilience

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"

	"github.com/pipe-dsl/pipe/pipeline"
)

// Error kinds returned by Classify and seen by retry_on as error.kind.
const (
	// KindTimeout: a deadline passed (a timeout policy, a client timeout).
	KindTimeout = "timeout"
	// KindConnection: the peer could not be reached or dropped the connection.
	KindConnection = "connection"
	// KindStatus: the peer answered with a failure status (StatusError).
	KindStatus = "status"
	// KindCircuitOpen: a breaker rejected the call (ErrCircuitOpen).
	KindCircuitOpen = "circuit_open"
	// KindCanceled: the call's context was cancelled (the pipeline's hard stop).
	KindCanceled = "canceled"
	// KindInvalid: the message itself is bad (expression_error,
	// invalid_payload); trying again cannot help.
	KindInvalid = "invalid"
	// KindError: anything else.
	KindError = "error"
)

// ErrCircuitOpen is the error of a call a breaker rejected while open.
var ErrCircuitOpen = errors.New("circuit breaker is open")

// StatusError is a failure status from a peer, such as an HTTP response
// code. Sinks return it (wrapped or not) so policies can tell a 503 from a
// 400.
type StatusError struct {
	Code int
	// RetryAfter, if positive, is how long the peer asked callers to wait
	// (HTTP Retry-After); a Retry waits at least that long, up to its
	// max_delay.
	RetryAfter time.Duration
	// Err, optional, holds details such as the response body's start.
	Err error
}

func (e *StatusError) Error() string {
	text := http.StatusText(e.Code)
	if e.Err != nil {
		return fmt.Sprintf("status %d %s: %v", e.Code, text, e.Err)
	}
	return fmt.Sprintf("status %d %s", e.Code, text)
}

func (e *StatusError) Unwrap() error { return e.Err }

// StatusCode returns Code. Classify reads the status of any error in the
// chain with this method, so a client package can define its own status
// error without importing this one.
func (e *StatusError) StatusCode() int { return e.Code }

// RetryDelay returns RetryAfter. A Retry reads the wait of any error in the
// chain with this method.
func (e *StatusError) RetryDelay() time.Duration { return e.RetryAfter }

// statusCoder is an error carrying a failure status, like StatusError.
type statusCoder interface{ StatusCode() int }

// retryDelayer is an error carrying a requested wait, like StatusError.
type retryDelayer interface{ RetryDelay() time.Duration }

// kindError is an error marked by WithKind.
type kindError struct {
	kind string
	err  error
}

func (e *kindError) Error() string { return e.err.Error() }
func (e *kindError) Unwrap() error { return e.err }

// WithKind returns err marked as being of kind, which Classify reports
// before any other rule: for sinks whose client errors Classify cannot
// recognise (a broker's "not leader", say, is a connection problem). It
// returns nil for a nil err.
func WithKind(kind string, err error) error {
	if err == nil {
		return nil
	}
	return &kindError{kind: kind, err: err}
}

// Classify returns the kind of err (one of the Kind constants) and, for
// KindStatus, the status code. The first rule that matches wins: a WithKind
// mark, ErrCircuitOpen, a StatusError (or any error with a StatusCode()
// int method), timeouts (context.DeadlineExceeded,
// os.ErrDeadlineExceeded, a net.Error whose Timeout is true),
// context.Canceled, connection errors (net.OpError, ECONNREFUSED,
// ECONNRESET, EPIPE, io.ErrUnexpectedEOF, io.EOF), a message-level
// dead-letter reason (expression_error, invalid_payload). A nil err has
// kind "".
func Classify(err error) (kind string, status int) {
	if err == nil {
		return "", 0
	}
	var ke *kindError
	var se statusCoder
	var ne net.Error
	var op *net.OpError
	switch {
	case errors.As(err, &ke):
		if errors.As(err, &se) {
			status = se.StatusCode()
		}
		return ke.kind, status
	case errors.Is(err, ErrCircuitOpen):
		return KindCircuitOpen, 0
	case errors.As(err, &se):
		return KindStatus, se.StatusCode()
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return KindTimeout, 0
	case errors.Is(err, context.Canceled):
		return KindCanceled, 0
	case errors.As(err, &op), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return KindConnection, 0
	}
	switch pipeline.Reason(err) {
	case pipeline.ReasonExpression, pipeline.ReasonInvalidPayload:
		return KindInvalid, 0
	}
	return KindError, 0
}

// Transient reports whether err is worth trying again: it is the default
// retry_on and what a breaker counts as a failure. Timeouts, connection
// errors, open circuits, unclassified errors and statuses 408, 429 and
// >= 500 are transient; other statuses (a 400 or 404 will not change),
// cancellation and invalid messages are not.
func Transient(err error) bool {
	kind, status := Classify(err)
	return transient(kind, status)
}

func transient(kind string, status int) bool {
	switch kind {
	case KindTimeout, KindConnection, KindCircuitOpen, KindError:
		return true
	case KindStatus:
		return status >= 500 || status == http.StatusRequestTimeout || status == http.StatusTooManyRequests
	}
	return false
}

// DefaultRetryOn is Transient written as a retry_on expression.
const DefaultRetryOn = `error.kind in ["timeout", "connection", "circuit_open", "error"] || ` +
	`error.kind == "status" && (error.status >= 500 || error.status in [408, 429])`

// isDrop reports whether err is a stage's intentional drop, which no
// policy treats as a failure.
func isDrop(err error) bool {
	var d *pipeline.DropError
	return errors.As(err, &d)
}

// isPartial reports a batch the call wrote but for members it refused for
// good (a [pipeline.BatchError]): the callee is healthy, and writing the
// same members again would duplicate the accepted ones.
func isPartial(err error) bool {
	var b *pipeline.BatchError
	return errors.As(err, &b)
}
