package pipeline

import (
	"errors"
	"fmt"
)

var (
	// ErrNacked is the error of a Nack without a cause.
	ErrNacked = errors.New("message nacked")
	// ErrAbandoned nacks messages still in flight when the drain deadline passed.
	ErrAbandoned = errors.New("abandoned at drain deadline")
	// ErrDrainTimeout is returned by Run when draining did not finish: in
	// time, or at all because Kill cut it short (then with ErrAborted).
	ErrDrainTimeout = errors.New("drain timeout")
	// ErrAborted is returned by Run when Kill cut the drain short.
	ErrAborted = errors.New("aborted")
)

// Dead-letter reasons used by the built-in stages.
const (
	ReasonError          = "error"
	ReasonExpression     = "expression_error"
	ReasonInvalidPayload = "invalid_payload"
	ReasonSinkError      = "sink_error"
	ReasonRetries        = "retries_exhausted"
	ReasonCircuitOpen    = "circuit_open"
	ReasonRateLimited    = "rate_limited"
	ReasonTimeout        = "timeout"
)

// ReasonedError is an error with a machine-readable dead-letter reason.
type ReasonedError struct {
	Reason string
	Err    error
}

// WithReason wraps err with a dead-letter reason such as [ReasonExpression].
func WithReason(reason string, err error) error {
	if err == nil {
		return nil
	}
	return &ReasonedError{Reason: reason, Err: err}
}

func (e *ReasonedError) Error() string { return e.Err.Error() }
func (e *ReasonedError) Unwrap() error { return e.Err }

// Reason returns the dead-letter reason of err: the innermost
// [ReasonedError]'s reason, or [ReasonError].
func Reason(err error) string {
	var r *ReasonedError
	if errors.As(err, &r) {
		return r.Reason
	}
	return ReasonError
}

// BatchError is a sink's answer for a batch it accepted only in part: Errs
// holds one entry per member, nil for a member the sink wrote and the error
// for one it refused. The runtime then fails only the refused members:
// each reaches the dead-letter sink with its own error and reason. A sink
// returns it only once the accepted members are written for good, and only
// for refusals that writing the same members again would not cure (a
// constraint violation, a column expression that fails), so a BatchError
// is never retried. Without a dead-letter sink the whole batch is nacked,
// accepted members included: make such sinks idempotent.
type BatchError struct{ Errs []error }

func (e *BatchError) Error() string {
	n, first := 0, error(nil)
	for _, err := range e.Errs {
		if err != nil {
			if n++; first == nil {
				first = err
			}
		}
	}
	if first == nil {
		return "every batch member accepted"
	}
	return fmt.Sprintf("%d of %d batch members refused; first: %v", n, len(e.Errs), first)
}

// Retryable reports false: the refusals are final (package resilience
// reads this method).
func (e *BatchError) Retryable() bool { return false }

// Permanent wraps err to say that retrying cannot cure it: package
// resilience reads its Retryable method and does not retry. It returns nil
// for nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err wraps an error made by [Permanent].
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

type permanentError struct{ error }

func (p permanentError) Unwrap() error   { return p.error }
func (p permanentError) Retryable() bool { return false }

// DropError reports an intentional drop: the message is acked and counted as
// dropped, not failed. Processors return it instead of an output message.
type DropError struct{ Reason string }

func (e *DropError) Error() string { return "dropped: " + e.Reason }

// Drop returns a [DropError] with the given reason.
func Drop(reason string) error { return &DropError{Reason: reason} }

// AbandonedError reports what was still in flight when Run gave up
// draining: at the drain timeout, or when Kill began the hard stop.
type AbandonedError struct {
	// InFlight counts, per node, the messages (a batch counts once) nacked
	// there at the hard stop.
	InFlight map[string]int
	// Sources counts the source messages those nacks left undelivered.
	Sources int
	// Killed is true when Kill began the hard stop, false at the drain
	// timeout.
	Killed bool
}

func (e *AbandonedError) Error() string {
	n := 0
	for _, c := range e.InFlight {
		n += c
	}
	cause := "drain timeout"
	if e.Killed {
		cause = "aborted"
	}
	return fmt.Sprintf("%s: %d source messages not delivered (%d messages in flight %v)", cause, e.Sources, n, e.InFlight)
}

// Unwrap returns [ErrDrainTimeout] (the drain did not finish), and
// [ErrAborted] too when Kill began the hard stop.
func (e *AbandonedError) Unwrap() []error {
	if e.Killed {
		return []error{ErrAborted, ErrDrainTimeout}
	}
	return []error{ErrDrainTimeout}
}
