package dsl_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"

	"github.com/pipe-dsl/pipe/dsl"
	"github.com/pipe-dsl/pipe/metrics"
	"github.com/pipe-dsl/pipe/pipeline"
)

// Given a dedupe, a batch and a failing sink under retry and breaker with a
// dead-letter sink, when the run ends, then /metrics shows the resilience
// state and each stage's own figures.
func TestGivenResiliencePolicies_MetricsShowBreakerRetryBatchDedupeAndDeadLetterFigures(t *testing.T) {
	src := `name: figures
source: {generate: {message: '{"id": seq % 4}', count: 8}}
stages:
  - dedupe: msg.id
  - batch: {size: 2}
sink:
  chaos: {fail_first: 100, status: 503}
  retry: {max_attempts: 3, base_delay: 1ms, max_delay: 1ms}
  breaker: {failure_threshold: 2, recovery_timeout: 1h, on_open: dead_letter}
dead_letter:
  drop: {}
`
	c, err := dsl.Parse("p.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	comp, err := dsl.Compile(c, &dsl.CompileOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	p := comp.Pipeline
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	e, err := metrics.New(func() (string, []pipeline.NodeStats) { return p.Name, p.Stats() }, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown(context.Background())
	srv := httptest.NewServer(e.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	body := string(b)

	value := func(series string) float64 {
		t.Helper()
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(body)
		if m == nil {
			t.Errorf("/metrics lacks %s", series)
			return -1
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		return v
	}
	const sink = `kind="chaos",node="sink",pipeline="figures"`
	for _, c := range []struct {
		series string
		want   float64
	}{
		{`pipe_dedupe_hits_total{kind="dedupe",node="dedupe",pipeline="figures"}`, 4},
		{`pipe_batch_flushes_total{kind="batch",node="batch",pipeline="figures",reason="size"}`, 2},
		{`pipe_breaker_state{` + sink + `}`, 2},
		{`pipe_breaker_transitions_total{` + sink + `,to="open"}`, 1},
		{`pipe_breaker_transitions_total{` + sink + `,to="closed"}`, 0},
		{`pipe_retry_attempts_total{kind="chaos",node="sink",outcome="retried",pipeline="figures"}`, 4},
		{`pipe_retry_attempts_total{kind="chaos",node="sink",outcome="exhausted",pipeline="figures"}`, 2},
		{`pipe_dead_letter_messages_total{kind="drop",node="dead_letter",pipeline="figures",reason="retries_exhausted"}`, 4},
	} {
		if got := value(c.series); got != c.want {
			t.Errorf("%s = %v, want %v", c.series, got, c.want)
		}
	}
	if t.Failed() {
		t.Log(body)
	}
}
