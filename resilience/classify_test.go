package resilience

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/pipeline"
)

func TestClassify(t *testing.T) {
	// A port nothing listens on: take one and close it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, refused := http.Post("http://"+addr, "text/plain", nil)

	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hang.Close()
	client := &http.Client{Timeout: time.Millisecond}
	_, clientTimeout := client.Get(hang.URL)

	drop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _, _ := w.(http.Hijacker).Hijack()
		c.Close()
	}))
	defer drop.Close()
	_, dropped := http.Get(drop.URL)

	for _, tc := range []struct {
		err       error
		kind      string
		status    int
		transient bool
	}{
		{nil, "", 0, false},
		{refused, KindConnection, 0, true},
		{clientTimeout, KindTimeout, 0, true},
		{dropped, KindConnection, 0, true},
		{&StatusError{Code: 503}, KindStatus, 503, true},
		{fmt.Errorf("post: %w", &StatusError{Code: 404}), KindStatus, 404, false},
		{&StatusError{Code: 429}, KindStatus, 429, true},
		{&StatusError{Code: 408}, KindStatus, 408, true},
		{pipeline.WithReason(pipeline.ReasonCircuitOpen, fmt.Errorf("b: %w", ErrCircuitOpen)), KindCircuitOpen, 0, true},
		{&TimeoutError{After: time.Second, Err: context.Canceled}, KindTimeout, 0, true},
		{context.Canceled, KindCanceled, 0, false},
		{pipeline.WithReason(pipeline.ReasonInvalidPayload, errors.New("not JSON")), KindInvalid, 0, false},
		{WithKind(KindConnection, errors.New("not leader")), KindConnection, 0, true},
		{WithKind(KindStatus, &StatusError{Code: 502}), KindStatus, 502, true},
		{errors.New("disk full"), KindError, 0, true},
	} {
		kind, status := Classify(tc.err)
		if kind != tc.kind || status != tc.status {
			t.Errorf("Classify(%v) = %q, %d; want %q, %d", tc.err, kind, status, tc.kind, tc.status)
		}
		if tc.err != nil && Transient(tc.err) != tc.transient {
			t.Errorf("Transient(%v) = %v, want %v", tc.err, !tc.transient, tc.transient)
		}
	}
}

// clientStatus is a status error from another package, as an HTTP client
// would define it.
type clientStatus struct {
	code  int
	after time.Duration
}

func (e *clientStatus) Error() string             { return "client status" }
func (e *clientStatus) StatusCode() int           { return e.code }
func (e *clientStatus) RetryDelay() time.Duration { return e.after }

func TestAnyErrorWithAStatusCodeIsClassified(t *testing.T) {
	err := fmt.Errorf("post: %w", &clientStatus{code: 429, after: 3 * time.Second})
	if kind, status := Classify(err); kind != KindStatus || status != 429 || !Transient(err) {
		t.Errorf("Classify = %s, %d, transient %v; want status, 429, true", kind, status, Transient(err))
	}
	if kind, status := Classify(&clientStatus{code: 401}); kind != KindStatus || status != 401 || Transient(&clientStatus{code: 401}) {
		t.Errorf("Classify(401) = %s, %d", kind, status)
	}
	r := newRetry(t, RetryConfig{MaxAttempts: 2, BaseDelay: time.Millisecond, MaxDelay: time.Minute}, nil)
	if d, ok := r.next(1, 0, err); !ok || d != 3*time.Second {
		t.Errorf("next = %v, %v; want the 3s the error asks for", d, ok)
	}
}
