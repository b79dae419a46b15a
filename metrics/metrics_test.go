package metrics_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/pipe-dsl/pipe/metrics"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	must(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(t, err)
	return resp.StatusCode, string(b)
}

// scrape serves an Exporter of stats and spans and returns its /metrics
// page, failing unless it answers 200.
func scrape(t *testing.T, stats metrics.StatsFunc, spans metrics.SpanStatsFunc) string {
	t.Helper()
	e, err := metrics.New(stats, spans)
	must(t, err)
	defer e.Shutdown(context.Background())
	srv := httptest.NewServer(e.Handler())
	defer srv.Close()
	code, body := get(t, srv.URL+"/metrics")
	if code != 200 {
		t.Fatalf("GET /metrics = %d\n%s", code, body)
	}
	return body
}

func TestMetricsEndpointExportsNodeCountersLatencyAndQueues(t *testing.T) {
	p := pipeline.New("orders")
	must(t, p.AddSource("in", "generate", pipelinetest.NewSource("a", "b", "c")))
	must(t, p.AddStage("keep", "filter", pipelinetest.ProcessorFunc(func(_ context.Context, m *pipeline.Message) (*pipeline.Message, error) {
		if string(m.Body) == "b" {
			return nil, nil
		}
		return m, nil
	}), pipeline.NodeOptions{Buffer: 7}))
	must(t, p.AddSink("out", "file", &pipelinetest.Sink{}, pipeline.NodeOptions{}))
	must(t, p.Connect("in", "", "keep"))
	must(t, p.Connect("keep", "", "out"))
	must(t, p.Run(context.Background()))

	body := scrape(t, func() (string, []pipeline.NodeStats) { return p.Name, p.Stats() },
		func() metrics.SpanStats { return metrics.SpanStats{Ended: 10, Exported: 5, Failed: 2, Dropped: 2} })
	for _, want := range []string{
		`pipe_node_messages_out_total{kind="generate",node="in",pipeline="orders",role="source"} 3`,
		`pipe_node_messages_dropped_total{kind="filter",node="keep",pipeline="orders",role="stage"} 1`,
		`pipe_node_messages_out_total{kind="file",node="out",pipeline="orders",role="sink"} 2`,
		`pipe_source_messages_acked_total{kind="generate",node="in",pipeline="orders",role="source"} 3`,
		`pipe_node_queue_capacity{kind="filter",node="keep",pipeline="orders",role="stage"} 7`,
		`pipe_node_queue_length{kind="filter",node="keep",pipeline="orders",role="stage"} 0`,
		`pipe_node_latency_seconds_count{kind="filter",node="keep",pipeline="orders",role="stage"} 3`,
		`pipe_node_latency_seconds_bucket{kind="filter",node="keep",pipeline="orders",role="stage",le="+Inf"} 3`,
		`pipe_trace_spans_dropped_total 2`,
		`pipe_trace_spans_failed_total 2`,
		`pipe_trace_spans_exported_total 5`,
		`pipe_trace_spans_queued 1`,
		"\ngo_goroutines ",
		"\nprocess_resident_memory_bytes ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, `pipe_source_messages_acked_total{kind="filter"`) {
		t.Errorf("acked counter exported for a stage")
	}
	if t.Failed() {
		t.Log(body)
	}
}

func TestReadyzFollowsSetReadyAndHealthzIsAlwaysOK(t *testing.T) {
	e, err := metrics.New(func() (string, []pipeline.NodeStats) { return "x", nil }, nil)
	must(t, err)
	defer e.Shutdown(context.Background())
	srv := httptest.NewServer(e.Handler())
	defer srv.Close()
	for _, step := range []struct {
		ready           bool
		readyz, healthz int
	}{{false, 503, 200}, {true, 200, 200}, {false, 503, 200}} {
		e.SetReady(step.ready)
		if c, _ := get(t, srv.URL+"/readyz"); c != step.readyz {
			t.Errorf("ready=%v: /readyz = %d, want %d", step.ready, c, step.readyz)
		}
		if c, _ := get(t, srv.URL+"/healthz"); c != step.healthz {
			t.Errorf("ready=%v: /healthz = %d, want %d", step.ready, c, step.healthz)
		}
	}
}
