package stages

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/expr"
	"github.com/pipe-dsl/pipe/internal/httpclient"
	"github.com/pipe-dsl/pipe/pipeline"
)

func TestHTTPStageProcessReturnsRetryableStatusError(t *testing.T) {
	for _, tc := range []struct {
		status    int
		retryable bool
	}{{400, false}, {404, false}, {408, true}, {429, true}, {502, true}} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(tc.status)
		}))
		v, err := newHTTPStage(&httpStageConfig{URL: srv.URL, Method: "GET"}, component.Env{Clock: pipeline.SystemClock})
		if err != nil {
			t.Fatal(err)
		}
		e := v.(*enricher)
		m := pipeline.NewMessage([]byte(`{"id":1}`), nil)
		out, err := e.Process(context.Background(), m)
		e.Close(context.Background())
		srv.Close()
		var se *httpclient.StatusError
		if out != nil || !errors.As(err, &se) || se.Code != tc.status || se.Retryable() != tc.retryable {
			t.Errorf("status %d: Process = %v, %v; want a StatusError with Retryable() %v", tc.status, out, err, tc.retryable)
		}
		if string(m.Body) != `{"id":1}` {
			t.Errorf("status %d: body changed to %s on failure", tc.status, m.Body)
		}
	}
}

func TestHTTPStageRejectsConfig(t *testing.T) {
	for _, c := range []httpStageConfig{
		{URL: "/relative"},
		{URL: "http://127.0.0.1:1/", Into: "x", Merge: mustCompileMerge(t)},
	} {
		if _, err := newHTTPStage(&c, component.Env{Clock: pipeline.SystemClock}); err == nil {
			t.Errorf("newHTTPStage(%+v) = nil error, want one", c)
		}
	}
}

func mustCompileMerge(t *testing.T) *expr.Program {
	t.Helper()
	p, err := expr.Compile("response", expr.WithVariables("response", "status"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHTTPStageInjectsTraceContext(t *testing.T) {
	prev := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(propagation.TraceContext{})
	defer otel.SetTextMapPropagator(prev)
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("traceparent")
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	v, err := newHTTPStage(&httpStageConfig{URL: srv.URL, Method: "GET"}, component.Env{Clock: pipeline.SystemClock})
	if err != nil {
		t.Fatal(err)
	}
	defer v.(*enricher).Close(context.Background())

	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	spanID, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	m := pipeline.NewMessage([]byte(`{}`), nil)
	m.SetContext(trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled})))
	if _, err := v.(*enricher).Process(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if tp, want := <-got, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"; tp != want {
		t.Errorf("traceparent = %q, want %q", tp, want)
	}
}
