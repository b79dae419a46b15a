//go:build e2e

// End-to-end tests against a Jaeger on 127.0.0.1 (make e2e-jaeger starts
// one with scripts/jaeger.sh): traces are exported over OTLP, then read back
// from Jaeger's query API.
package tracing_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
	"github.com/pipe-dsl/pipe/tracing"
)

const jaegerQuery = "http://127.0.0.1:16686"

type jaegerTrace struct {
	TraceID string       `json:"traceID"`
	Spans   []jaegerSpan `json:"spans"`
}

type jaegerSpan struct {
	SpanID     string `json:"spanID"`
	Operation  string `json:"operationName"`
	References []struct {
		RefType string `json:"refType"`
		TraceID string `json:"traceID"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	Tags []struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	} `json:"tags"`
	Logs []struct {
		Fields []struct {
			Key   string `json:"key"`
			Value any    `json:"value"`
		} `json:"fields"`
	} `json:"logs"`
}

func (s jaegerSpan) tag(k string) string {
	for _, t := range s.Tags {
		if t.Key == k {
			return fmt.Sprint(t.Value)
		}
	}
	return ""
}

func (s jaegerSpan) parent() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

func requireJaeger(t *testing.T) {
	t.Helper()
	resp, err := http.Get(jaegerQuery + "/api/services")
	if err != nil {
		t.Skipf("no Jaeger query API at %s (run make e2e-jaeger): %v", jaegerQuery, err)
	}
	resp.Body.Close()
}

// traces polls Jaeger until service has at least want traces. Jaeger
// stores spans asynchronously, so this is a bounded poll of an external
// service, not a wait on pipe's own goroutines.
func traces(t *testing.T, service string, want int) []jaegerTrace {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(jaegerQuery + "/api/traces?limit=1000&service=" + service)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Data []jaegerTrace }
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(body.Data) >= want || time.Now().After(deadline) {
			t.Logf("GET /api/traces?service=%s: %d traces", service, len(body.Data))
			return body.Data
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func pipeBinary(t *testing.T) string {
	t.Helper()
	if b, err := filepath.Abs("../bin/pipe"); err == nil {
		if _, err := os.Stat(b); err == nil {
			return b
		}
	}
	b := filepath.Join(t.TempDir(), "pipe")
	if out, err := exec.Command("go", "build", "-o", b, "../cmd/pipe").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return b
}

func TestPipeRunExportsOneSpanPerStageUnderARootAndRetryEventsToJaeger(t *testing.T) {
	requireJaeger(t)
	service := fmt.Sprintf("pipe-e2e-run-%d", time.Now().UnixNano())
	dir := t.TempDir()
	file := filepath.Join(dir, "p.yaml")
	yaml := `name: e2e
source:
  generate:
    count: 20
    message: '{"id": seq}'
stages:
  - filter: msg.id % 2 == 0
  - map: '{"id": msg.id, "even": true}'
sink:
  chaos: {fail_first: 3, path: ` + filepath.Join(dir, "out.ndjson") + `}
  retry: {max_attempts: 5, base_delay: 1ms, max_delay: 5ms}
tracing:
  exporter: otlp
  endpoint: 127.0.0.1:4317
  service_name: ` + service + "\n"
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(pipeBinary(t), "run", "--log-format", "text", file).CombinedOutput()
	t.Logf("pipe run:\n%s", out)
	if err != nil {
		t.Fatalf("pipe run: %v", err)
	}
	if !strings.Contains(string(out), "dropped (export queue full)") {
		t.Errorf("run summary has no span line")
	}

	ts := traces(t, service, 20)
	if len(ts) != 20 {
		t.Fatalf("traces = %d, want 20 (one per source message)", len(ts))
	}
	kept, retried := 0, 0
	for _, tr := range ts {
		var root jaegerSpan
		var children []string
		for _, s := range tr.Spans {
			if s.parent() == "" {
				root = s
			}
		}
		if root.Operation != "source source" {
			t.Fatalf("trace %s: root %q, want \"source source\"", tr.TraceID, root.Operation)
		}
		for _, s := range tr.Spans {
			if s.parent() == root.SpanID {
				children = append(children, s.Operation)
			}
			if s.Operation == "stage sink" {
				for _, l := range s.Logs {
					for _, f := range l.Fields {
						if f.Key == "event" && f.Value == "retry" {
							retried++
						}
					}
				}
			}
		}
		slices.Sort(children)
		switch strings.Join(children, ",") {
		case "stage filter,stage map,stage sink":
			kept++
		case "stage filter":
		default:
			t.Errorf("trace %s: children of root = %v", tr.TraceID, children)
		}
	}
	if kept != 10 {
		t.Errorf("traces through every stage = %d, want 10 (the even ids)", kept)
	}
	if retried != 3 {
		t.Errorf("retry events on sink spans = %d, want 3 (chaos fails the first 3 writes)", retried)
	}
}

func TestBatchSpanLinksReachJaeger(t *testing.T) {
	requireJaeger(t)
	service := fmt.Sprintf("pipe-e2e-batch-%d", time.Now().UnixNano())
	ctx := context.Background()
	prov, err := tracing.New(ctx, tracing.Config{Exporter: "otlp", Endpoint: "127.0.0.1:4317", ServiceName: service})
	if err != nil {
		t.Fatal(err)
	}
	p := pipeline.New("e2e-batch")
	must(t, p.AddSource("in", "generate", pipelinetest.NewSource("1", "2", "3", "4", "5", "6")))
	must(t, p.AddStage("keep", "filter", pipelinetest.ProcessorFunc(func(_ context.Context, m *pipeline.Message) (*pipeline.Message, error) {
		return m, nil
	}), pipeline.NodeOptions{}))
	must(t, p.AddStage("group", "batch", batcher{n: 3}, pipeline.NodeOptions{}))
	must(t, p.AddSink("out", "file", &pipelinetest.Sink{}, pipeline.NodeOptions{}))
	must(t, p.Connect("in", "", "keep"))
	must(t, p.Connect("keep", "", "group"))
	must(t, p.Connect("group", "", "out"))
	p.Tracer = prov.Tracer
	must(t, p.Run(ctx))
	must(t, prov.Shutdown(ctx))
	t.Logf("span stats: %+v", prov.Stats())

	ts := traces(t, service, 8)
	var members, batches int
	memberGroupSpans := map[string]bool{}
	var links [][]string
	for _, tr := range ts {
		for _, s := range tr.Spans {
			switch {
			case s.Operation == "stage group" && s.parent() != "":
				members++
				memberGroupSpans[s.SpanID] = true
			case s.Operation == "stage group":
				batches++
				if got := s.tag("batch.size"); got != "3" {
					t.Errorf("batch span batch.size = %q, want 3", got)
				}
				if got := s.tag("batch.flush_reason"); got != "size" {
					t.Errorf("batch span batch.flush_reason = %q, want size", got)
				}
				var l []string
				for _, r := range s.References {
					if r.RefType == "FOLLOWS_FROM" {
						l = append(l, r.SpanID)
					}
				}
				links = append(links, l)
			}
		}
	}
	if len(ts) != 8 || members != 6 || batches != 2 {
		t.Fatalf("traces %d, member group spans %d, batch spans %d; want 8, 6, 2", len(ts), members, batches)
	}
	for _, l := range links {
		if len(l) != 3 {
			t.Errorf("batch span links = %d, want 3", len(l))
		}
		for _, id := range l {
			if !memberGroupSpans[id] {
				t.Errorf("batch link %s is not a member's group span", id)
			}
		}
	}
}
