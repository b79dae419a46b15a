package dsl_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/pipe-dsl/pipe/dsl"
	"github.com/pipe-dsl/pipe/tracing"
)

// TestSecretInURLPathStaysOutOfDeadLettersAndSpans: Given an http sink and
// an http stage whose URL paths hold a secret from the environment (the
// usual webhook shape) and an endpoint that answers 404 echoing the path,
// when a message fails at both, then neither the dead letters, the logs nor
// the spans show the secret, and the errors still name the URL.
func TestSecretInURLPathStaysOutOfDeadLettersAndSpans(t *testing.T) {
	const hook = "hook-5d2e8b-SECRET"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, "no route "+r.URL.Path)
	}))
	defer srv.Close()
	for _, tc := range []struct{ name, node string }{
		{"http sink", "sink: {http: {url: \"" + srv.URL + "/services/T000/B000/${HOOK}\"}}"},
		{"http stage", "stages:\n  - http: {url: \"" + srv.URL + "/lookup/${HOOK}\"}\nsink: {drop: {}}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := "name: hook\nsource: {stdin: {}}\n" + tc.node + "\ndead_letter: {drop: {}}\n"
			cfg, err := dsl.Parse("hook.yaml", []byte(file), &dsl.Options{Lookup: func(k string) (string, bool) {
				return hook, k == "HOOK"
			}})
			if err != nil {
				t.Fatal(err)
			}
			var out output
			c, _, dlq, err := compileRecording(t, cfg, &out)
			if err != nil {
				t.Fatal(err)
			}
			exp := tracetest.NewInMemoryExporter()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
			defer func() { _ = tp.Shutdown(context.Background()) }()
			c.Tracer = tracing.NewTracer(tp, 1)
			if err := c.Run(context.Background()); err != nil {
				out.add("run", err.Error())
			}
			for _, b := range dlq.Bodies() {
				out.add("dead letter", b)
			}
			for _, s := range exp.GetSpans() {
				out.add("span status", s.Status.Description)
				for _, a := range s.Attributes {
					out.add("span attribute", string(a.Key)+"="+a.Value.Emit())
				}
				for _, e := range s.Events {
					for _, a := range e.Attributes {
						out.add("span event", string(a.Key)+"="+a.Value.Emit())
					}
				}
			}
			if len(dlq.Bodies()) != 1 || !strings.Contains(out.String(), "[redacted]") || !strings.Contains(out.String(), "404") {
				t.Fatalf("want one dead letter naming the 404 and a redacted URL:\n%s", out.String())
			}
			if strings.Contains(out.String(), hook) {
				t.Fatalf("output shows the secret from the URL path:\n%s", out.String())
			}
		})
	}
}
