package dsl_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/dsl"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

// Secret values (fields tagged secret and anything from ${VAR}) must not
// appear in what pipe prints: config errors, run errors, logs at every
// level, dead-letter envelopes and graphs. Each test below collects all of
// that for one pipeline and greps it for the secret.

const (
	secretToken    = "tok-7f3a9c-SECRET"
	secretPassword = "pw-91be4d-SECRET"
)

var secretEnv = map[string]string{
	"API_TOKEN": secretToken,
	// Port 1 refuses connections, so the sink fails at its first write.
	"PG_DSN":     "postgres://pipe:" + secretPassword + "@127.0.0.1:1/pipe?connect_timeout=2",
	"PG_BAD_DSN": "postgres://pipe:" + secretPassword + "@127.0.0.1:notaport/pipe",
	"NOT_A_SIZE": secretToken,
}

func secretOpts() *dsl.Options {
	return &dsl.Options{Lookup: func(k string) (string, bool) { v, ok := secretEnv[k]; return v, ok }}
}

// output gathers everything a pipeline printed.
type output struct{ bytes.Buffer }

func (o *output) add(what string, s string) { o.WriteString(what + ": " + s + "\n") }

func (o *output) check(t *testing.T) {
	t.Helper()
	for _, s := range []string{secretToken, secretPassword} {
		if strings.Contains(o.String(), s) {
			t.Errorf("output shows a secret %q:\n%s", s, o.String())
		}
	}
}

func TestSecretsStayOutOfErrorsLogsDeadLettersAndGraphs(t *testing.T) {
	t.Run("with a dead-letter sink", func(t *testing.T) { testSecretsAtRunTime(t, true) })
	t.Run("without one, failures are logged", func(t *testing.T) { testSecretsAtRunTime(t, false) })
}

func testSecretsAtRunTime(t *testing.T, withDLQ bool) {
	// Given an HTTP endpoint that rejects the token and echoes the request
	// headers back, and a PostgreSQL that is not there
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, "bad token "+r.Header.Get("Authorization"))
	}))
	defer srv.Close()
	file := `
name: secrets
sources:
  in: {stdin: {}}
sinks:
  api:
    inputs: [in]
    http: {url: "` + srv.URL + `", token: "${API_TOKEN}"}
  db:
    inputs: [in]
    postgres: {dsn: "${PG_DSN}", table: orders, columns: {id: msg.id}}
`
	if withDLQ {
		file += "dead_letter: {drop: {}}\n"
	}
	var out output
	cfg, err := dsl.Parse("secrets.yaml", []byte(file), secretOpts())
	if err != nil {
		t.Fatal(err)
	}
	c, src, dlq, err := compileRecording(t, cfg, &out)
	if err != nil {
		t.Fatal(err)
	}
	// When a message fails at both sinks
	if err := c.Run(context.Background()); err != nil {
		out.add("run", err.Error())
	}
	for _, b := range dlq.Bodies() {
		out.add("dead letter", b)
	}
	for _, e := range src.Nacked() {
		out.add("nack", e.Error())
	}
	// Then both failures were reported, and no report shows a secret
	if got, want := len(dlq.Bodies()), map[bool]int{true: 2, false: 0}[withDLQ]; got != want {
		t.Fatalf("dead letters = %d, want %d:\n%s", got, want, out.String())
	}
	if !withDLQ && !strings.Contains(out.String(), "connection refused") {
		t.Errorf("the postgres failure is not logged:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "401") {
		t.Errorf("the http failure is not described:\n%s", out.String())
	}
	out.check(t)
}

func TestSecretsStayOutOfConfigErrors(t *testing.T) {
	for _, tc := range []struct{ name, file string }{
		{"an unparsable dsn", `
name: secrets
source: {stdin: {}}
sink: {postgres: {dsn: "${PG_BAD_DSN}", table: orders, columns: {id: msg.id}}}
`},
		{"an env value in the wrong type", `
name: secrets
source: {stdin: {}}
stages:
  - dedupe: {key: msg.id, max_keys: "${NOT_A_SIZE}"}
sink: {http: {url: "http://127.0.0.1:1/", token: "${API_TOKEN}", timeout: "${API_TOKEN}"}}
`},
		{"a secret in an unknown key's neighbour", `
name: secrets
source: {stdin: {}}
sink: {http: {url: "${API_TOKEN}", tokn: "${API_TOKEN}"}}
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out output
			cfg, err := dsl.Parse("secrets.yaml", []byte(tc.file), secretOpts())
			if err == nil {
				_, err = dsl.Compile(cfg, &dsl.CompileOptions{
					Logger: slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})),
				})
			}
			if err == nil {
				t.Fatal("the config was accepted")
			}
			var errs dsl.Errors
			if errors.As(err, &errs) {
				for _, e := range errs {
					out.add("error", e.Error())
				}
			}
			out.add("error", err.Error())
			out.check(t)
		})
	}
}

// Broker sinks with credentials from the environment, pointed at a port
// that refuses connections: whatever they report while failing or
// reconnecting must not show the credentials.
func TestBrokerCredentialsStayOutOfRunTimeReports(t *testing.T) {
	for _, sink := range []string{
		`amqp: {url: "amqp://pipe:${SECRET_PW}@127.0.0.1:1/", queue: q}`,
		`redis_streams: {addr: "127.0.0.1:1", password: "${SECRET_PW}", stream: s}`,
		`nats_jetstream: {url: "nats://127.0.0.1:1", user: pipe, password: "${SECRET_PW}", subject: s, timeout: 1s}`,
		`nats_jetstream: {url: "nats://127.0.0.1:1", token: "${SECRET_PW}", subject: s, timeout: 1s}`,
		`mqtt: {broker: "tcp://127.0.0.1:1", username: pipe, password: "${SECRET_PW}", topic: t}`,
	} {
		t.Run(strings.TrimSuffix(strings.Fields(sink)[0], ":"), func(t *testing.T) {
			t.Parallel()
			file := "name: secrets\ndrain_timeout: 1s\nsource: {stdin: {}}\nsink: {" + sink + "}\ndead_letter: {drop: {}}\n"
			var out output
			cfg, err := dsl.Parse("secrets.yaml", []byte(file), &dsl.Options{Lookup: func(k string) (string, bool) {
				return secretPassword, k == "SECRET_PW"
			}})
			if err != nil {
				t.Fatal(err)
			}
			c, src, dlq, err := compileRecording(t, cfg, &out)
			if err != nil {
				out.add("compile", err.Error())
				out.check(t)
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if err := c.Run(ctx); err != nil {
				out.add("run", err.Error())
			}
			for _, b := range dlq.Bodies() {
				out.add("dead letter", b)
			}
			for _, e := range src.Nacked() {
				out.add("nack", e.Error())
			}
			if !strings.Contains(out.String(), "127.0.0.1:1") && len(dlq.Bodies())+len(src.Nacked()) == 0 {
				t.Logf("nothing reported the failure:\n%s", out.String())
			}
			out.check(t)
		})
	}
}

// compileRecording draws cfg's graphs into out, then compiles cfg with a
// logger writing into out, the returned one-message source and recording
// dead-letter sink.
func compileRecording(t *testing.T, cfg *dsl.Config, out *output) (*dsl.Compiled, *pipelinetest.Source, *pipelinetest.Sink, error) {
	t.Helper()
	for _, format := range []string{dsl.GraphMermaid, dsl.GraphDot} {
		g, err := dsl.Graph(cfg, nil, format)
		if err != nil {
			t.Fatal(err)
		}
		out.add("graph", g)
	}
	dlq := &pipelinetest.Sink{}
	src := pipelinetest.NewSource(`{"id":1}`)
	logger := slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := dsl.Compile(cfg, &dsl.CompileOptions{Logger: logger, Replace: func(n *dsl.Node) (any, bool) {
		switch {
		case n.Role == pipeline.RoleSource:
			return src, true
		case n == cfg.DeadLetter:
			return dlq, true
		}
		return nil, false
	}})
	return c, src, dlq, err
}
