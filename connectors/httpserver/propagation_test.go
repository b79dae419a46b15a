package httpserver_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/pipe-dsl/pipe/connectors/internal/conntest"
	"github.com/pipe-dsl/pipe/connectors/internal/dsltest"
	"github.com/pipe-dsl/pipe/tracing"
)

// Given a request carrying a traceparent, when pipe passes its body from the
// http_server source to an http sink, then the receiving server sees the
// same trace id, with pipe's span as the parent.
func TestHTTPInHTTPOutContinuesTheIncomingTrace(t *testing.T) {
	prev := otel.GetTextMapPropagator()
	t.Cleanup(func() { otel.SetTextMapPropagator(prev) })
	prov, err := tracing.New(context.Background(), tracing.Config{Exporter: "stdout", Stdout: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer prov.Shutdown(context.Background())

	seen := make(chan string, 1)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Get("traceparent")
	}))
	defer receiver.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	p := dsltest.Compile(t, fmt.Sprintf(`
name: propagate
source:
  http_server: {address: %q, path: /in, auth: none}
sink:
  http: {url: %q}
`, addr, receiver.URL), nil)
	p.Tracer = prov.Tracer
	stop := conntest.Start(t, p)

	const traceID, parentID = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	req := func() (*http.Response, error) {
		r, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/in", strings.NewReader(`{"id":1}`))
		r.Header.Set("traceparent", "00-"+traceID+"-"+parentID+"-01")
		return http.DefaultClient.Do(r)
	}
	resp, err := req()
	for deadline := time.Now().Add(10 * time.Second); err != nil && time.Now().Before(deadline); resp, err = req() {
		time.Sleep(10 * time.Millisecond) // the source is not listening yet
	}
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST = %d, want 200", resp.StatusCode)
	}
	var tp string
	select {
	case tp = <-seen:
	case <-time.After(10 * time.Second):
		t.Fatal("the receiving server got no request")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tp, "-")
	if len(parts) != 4 || parts[1] != traceID || parts[2] == parentID {
		t.Errorf("receiving server saw traceparent %q; want trace %s with pipe's span as parent", tp, traceID)
	}
}
