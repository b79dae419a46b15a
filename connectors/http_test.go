package connectors

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/internal/httpclient"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

// seen is one request as the server received it.
type seen struct {
	method, ctype, auth, traceparent, custom string
	body                                     string
}

// recordingServer answers every request with status and records it.
func recordingServer(t *testing.T, status int) (*httptest.Server, func() []seen) {
	t.Helper()
	var mu sync.Mutex
	var got []seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, seen{r.Method, r.Header.Get("Content-Type"), r.Header.Get("Authorization"),
			r.Header.Get("traceparent"), r.Header.Get("X-Source"), string(b)})
		mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []seen {
		mu.Lock()
		defer mu.Unlock()
		return append([]seen(nil), got...)
	}
}

func newTestHTTPSink(t *testing.T, c httpSinkConfig) *httpSink {
	t.Helper()
	if c.Method == "" {
		c.Method = "POST"
	}
	if c.BatchFormat == "" {
		c.BatchFormat = "array"
	}
	s, err := newHTTPSink(&c, component.Env{Clock: pipeline.SystemClock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.(*httpSink).Close(context.Background()) })
	return s.(*httpSink)
}

func batchOf(bodies ...string) *pipeline.Message {
	ms := make([]*pipeline.Message, len(bodies))
	for i, b := range bodies {
		ms[i] = pipeline.NewMessage([]byte(b), nil)
	}
	return pipeline.NewBatch(ms)
}

func TestHTTPSinkSendsBodiesAndBatches(t *testing.T) {
	cases := []struct {
		name, method, format string
		msg                  *pipeline.Message
		wantBody, wantType   string
	}{
		{"one message is its body", "POST", "array",
			pipeline.NewMessage([]byte(`{"id":1}`), nil), `{"id":1}`, "application/json"},
		{"PUT is used when asked", "PUT", "array",
			pipeline.NewMessage([]byte(`{"id":2}`), nil), `{"id":2}`, "application/json"},
		{"a batch is a JSON array", "POST", "array",
			batchOf(`{"id":1}`, `{"id":2}`, `3`), `[{"id":1},{"id":2},3]`, "application/json"},
		{"a batch as ndjson is one body per line, compacted", "POST", "ndjson",
			batchOf(`{"id":1}`, "{\n  \"id\": 2\n}"), "{\"id\":1}\n{\"id\":2}\n", "application/x-ndjson"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, got := recordingServer(t, http.StatusNoContent)
			s := newTestHTTPSink(t, httpSinkConfig{URL: srv.URL, Method: tc.method, BatchFormat: tc.format})
			if err := s.Write(context.Background(), tc.msg); err != nil {
				t.Fatalf("Write = %v, want nil", err)
			}
			reqs := got()
			if len(reqs) != 1 {
				t.Fatalf("server saw %d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.method != tc.method || r.body != tc.wantBody || r.ctype != tc.wantType {
				t.Errorf("request = %s %q (%s), want %s %q (%s)", r.method, r.body, r.ctype, tc.method, tc.wantBody, tc.wantType)
			}
		})
	}
}

func TestHTTPSinkRejectsNonJSONArrayMember(t *testing.T) {
	srv, got := recordingServer(t, http.StatusOK)
	s := newTestHTTPSink(t, httpSinkConfig{URL: srv.URL})
	err := s.Write(context.Background(), batchOf(`{"id":1}`, `not json`))
	if pipeline.Reason(err) != pipeline.ReasonInvalidPayload {
		t.Errorf("Write = %v (reason %s), want reason invalid_payload", err, pipeline.Reason(err))
	}
	if n := len(got()); n != 0 {
		t.Errorf("server saw %d requests, want 0", n)
	}
}

func TestHTTPSinkSendsHeadersAndBearerToken(t *testing.T) {
	srv, got := recordingServer(t, http.StatusOK)
	s := newTestHTTPSink(t, httpSinkConfig{URL: srv.URL, Token: "s3cr3t-token",
		Headers: map[string]string{"X-Source": "pipe", "Content-Type": "application/vnd.x+json"}})
	if err := s.Write(context.Background(), pipeline.NewMessage([]byte(`{}`), nil)); err != nil {
		t.Fatal(err)
	}
	r := got()[0]
	if r.auth != "Bearer s3cr3t-token" || r.custom != "pipe" || r.ctype != "application/vnd.x+json" {
		t.Errorf("headers: Authorization %q, X-Source %q, Content-Type %q; want the bearer token, pipe and the configured type", r.auth, r.custom, r.ctype)
	}
}

// A server that echoes the Authorization header in its error body must not
// get the token into errors, dead letters or logs.
func TestHTTPSinkTokenNeverInErrorsOrLogs(t *testing.T) {
	const token = "tok-9f8e7d6c5b4a"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad credentials: "+r.Header.Get("Authorization"), http.StatusUnauthorized)
	}))
	defer srv.Close()
	s := newTestHTTPSink(t, httpSinkConfig{URL: srv.URL + "/in?api_key=" + token, Token: token})

	err := s.Write(context.Background(), pipeline.NewMessage([]byte(`{}`), nil))
	var se *httpclient.StatusError
	if !errors.As(err, &se) || se.Code != 401 {
		t.Fatalf("Write = %v, want a 401 StatusError", err)
	}
	if strings.Contains(err.Error(), token) {
		t.Errorf("error %q contains the token", err)
	}
	if !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("error %q: want the echoed token shown as [redacted]", err)
	}

	// Through a pipeline without a dead-letter sink, the failure is logged.
	var logs bytes.Buffer
	p := pipeline.New("t")
	p.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	src := pipelinetest.NewSource(`{"id":1}`)
	must(t, p.AddSource("src", "test", src))
	must(t, p.AddSink("out", "http", s, pipeline.NodeOptions{}))
	must(t, p.Connect("src", "", "out"))
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(src.Nacked()) != 1 {
		t.Fatalf("nacked %v, want the one message", src.Nacked())
	}
	for _, e := range src.Nacked() {
		if strings.Contains(e.Error(), token) {
			t.Errorf("nack error %q contains the token", e)
		}
	}
	if logs.Len() == 0 {
		t.Error("nothing was logged; the test checks nothing")
	}
	if strings.Contains(logs.String(), token) {
		t.Errorf("logs contain the token:\n%s", logs.String())
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestHTTPSinkClassifiesStatuses(t *testing.T) {
	cases := []struct {
		status     int
		retryAfter string
		wantErr    bool
		retryable  bool
		wait       time.Duration
	}{
		{200, "", false, false, 0},
		{204, "", false, false, 0},
		{400, "", true, false, 0},
		{401, "", true, false, 0},
		{404, "", true, false, 0},
		{408, "", true, true, 0},
		{422, "", true, false, 0},
		{429, "7", true, true, 7 * time.Second},
		{500, "", true, true, 0},
		{503, "120", true, true, 2 * time.Minute},
	}
	for _, tc := range cases {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tc.retryAfter != "" {
				w.Header().Set("Retry-After", tc.retryAfter)
			}
			w.WriteHeader(tc.status)
		}))
		s := newTestHTTPSink(t, httpSinkConfig{URL: srv.URL})
		err := s.Write(context.Background(), pipeline.NewMessage([]byte(`{}`), nil))
		srv.Close()
		if (err != nil) != tc.wantErr {
			t.Errorf("status %d: Write = %v, want error %v", tc.status, err, tc.wantErr)
			continue
		}
		if err == nil {
			continue
		}
		var se *httpclient.StatusError
		if !errors.As(err, &se) {
			t.Errorf("status %d: Write = %T, want *httpclient.StatusError", tc.status, err)
			continue
		}
		if se.Code != tc.status || se.Retryable() != tc.retryable || se.RetryAfter != tc.wait {
			t.Errorf("status %d: got code %d retryable %v retry-after %v, want %d %v %v",
				tc.status, se.Code, se.Retryable(), se.RetryAfter, tc.status, tc.retryable, tc.wait)
		}
	}
}

// Eight concurrent writers share max_conns connections: the server never
// sees more open at once.
func TestHTTPSinkBoundsConnections(t *testing.T) {
	const maxConns, writers, perWriter = 2, 8, 5
	var mu sync.Mutex
	open, peak, inflight, served := 0, 0, 0, 0
	release := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		inflight++
		served++
		if inflight == maxConns {
			select {
			case <-release:
			default:
				close(release) // both connections are busy at once
			}
		}
		mu.Unlock()
		<-release
		mu.Lock()
		inflight--
		mu.Unlock()
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		switch st {
		case http.StateNew:
			open++
			peak = max(peak, open)
		case http.StateClosed, http.StateHijacked:
			open--
		}
	}
	srv.Start()
	defer srv.Close()
	s := newTestHTTPSink(t, httpSinkConfig{URL: srv.URL, MaxConns: maxConns})

	var wg sync.WaitGroup
	errs := make(chan error, writers*perWriter)
	for range writers {
		wg.Go(func() {
			for range perWriter {
				errs <- s.Write(context.Background(), pipeline.NewMessage([]byte(`{}`), nil))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Write = %v", err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if served != writers*perWriter {
		t.Errorf("served %d requests, want %d", served, writers*perWriter)
	}
	if peak > maxConns {
		t.Errorf("server saw %d connections open at once, want at most max_conns = %d", peak, maxConns)
	}
	if peak < maxConns {
		t.Errorf("server saw at most %d connections, want %d: the pool was not used in parallel", peak, maxConns)
	}
}

func TestHTTPSinkTimesOut(t *testing.T) {
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}))
	defer srv.Close()
	defer close(done)
	s := newTestHTTPSink(t, httpSinkConfig{URL: srv.URL, Timeout: 50 * time.Millisecond})
	err := s.Write(context.Background(), pipeline.NewMessage([]byte(`{}`), nil))
	if !errors.Is(err, context.DeadlineExceeded) || pipeline.Reason(err) != pipeline.ReasonTimeout {
		t.Errorf("Write = %v (reason %s), want context.DeadlineExceeded with reason timeout", err, pipeline.Reason(err))
	}
}

func TestHTTPSinkConnectionRefusedIsATransportError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	s := newTestHTTPSink(t, httpSinkConfig{URL: url})
	err := s.Write(context.Background(), pipeline.NewMessage([]byte(`{}`), nil))
	var op *net.OpError
	if !errors.As(err, &op) {
		t.Errorf("Write = %v, want a *net.OpError inside", err)
	}
}

func TestHTTPSinkInjectsTraceContext(t *testing.T) {
	prev := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(propagation.TraceContext{})
	defer otel.SetTextMapPropagator(prev)

	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	spanID, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled})

	srv, got := recordingServer(t, http.StatusOK)
	s := newTestHTTPSink(t, httpSinkConfig{URL: srv.URL})
	m := pipeline.NewMessage([]byte(`{}`), nil)
	m.SetContext(trace.ContextWithSpanContext(context.Background(), sc))
	must(t, s.Write(context.Background(), m))
	must(t, s.Write(context.Background(), pipeline.NewBatch([]*pipeline.Message{m})))
	must(t, s.Write(context.Background(), pipeline.NewMessage([]byte(`{}`), nil)))

	want := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	reqs := got()
	if reqs[0].traceparent != want || reqs[1].traceparent != want {
		t.Errorf("traceparent = %q, %q (message, batch); want %q", reqs[0].traceparent, reqs[1].traceparent, want)
	}
	if reqs[2].traceparent != "" {
		t.Errorf("traceparent without a span = %q, want none", reqs[2].traceparent)
	}
}

func TestHTTPSinkRejectsBadURL(t *testing.T) {
	for _, u := range []string{"ftp://x/y", "/relative", "http://"} {
		if _, err := newHTTPSink(&httpSinkConfig{URL: u}, component.Env{Clock: pipeline.SystemClock}); err == nil {
			t.Errorf("newHTTPSink(url %q) = nil error, want one", u)
		}
	}
}
