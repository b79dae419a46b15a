// Package resilience provides the retry, circuit breaker and timeout
// policies that wrap sinks and fallible stages, and the error
// classification (Classify, StatusError) those policies and sinks share.
//
// # Composition
//
// Policies wrap a Call, the first named outermost. The DSL, and most
// callers, use
//
//	Retry(Breaker(Timeout(write)))
//
// Each attempt passes the breaker and has its own deadline; a timed-out
// attempt counts as a breaker failure; a call the open breaker rejects
// fails with ErrCircuitOpen, which the default retry_on retries with
// backoff like any transient error. Put the breaker outside the retry,
// Compose(call, breaker, retry, timeout), to count one breaker failure per
// message after all its attempts instead of one per attempt: the breaker
// then opens later and a half-open probe may take several attempts.
//
// # Errors
//
// Sinks return errors that Classify can sort: a *StatusError for a failure
// status, net and context errors as they come, or WithKind for anything
// else. Transient is the default answer to "try again?".
package resilience
