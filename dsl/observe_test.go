package dsl

import (
	"strings"
	"testing"
)

const observeBase = "name: x\nsource: {generate: {message: '1'}}\nsink: {drop: {}}\n"

func TestTracingAndMetricsSectionsDecode(t *testing.T) {
	src := observeBase + `tracing:
  exporter: otlp
  endpoint: 127.0.0.1:4317
  protocol: grpc
  sample_ratio: 0.25
  service_name: orders
  queue_size: 4096
  blocking: true
metrics:
  http: 127.0.0.1:9464
`
	c, err := Parse("p.yaml", []byte(src), nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	tr := c.Tracing
	if tr == nil || tr.Exporter != "otlp" || tr.Endpoint != "127.0.0.1:4317" || tr.Protocol != "grpc" ||
		tr.SampleRatio == nil || *tr.SampleRatio != 0.25 || tr.ServiceName != "orders" ||
		tr.QueueSize != 4096 || !tr.Blocking {
		t.Errorf("Tracing = %+v", tr)
	}
	if c.Metrics == nil || c.Metrics.HTTP != "127.0.0.1:9464" {
		t.Errorf("Metrics = %+v, want http 127.0.0.1:9464", c.Metrics)
	}
}

func TestTracingAndMetricsSectionsReportErrors(t *testing.T) {
	for _, tc := range []struct{ section, want string }{
		{"tracing: {exporter: jaeger}", `p.yaml:4:21: unknown tracing.exporter value "jaeger"`},
		{"tracing: {sample_ratio: 2}", "p.yaml:4:25: tracing.sample_ratio: expected a number from 0 to 1, got \"2\""},
		{"tracing: {blocking: yes please}", "tracing.blocking: expected true or false"},
		{"tracing: {queue_size: 0}", "tracing.queue_size: 0 is out of range"},
		{"tracing: {sampel_ratio: 1}", `unknown tracing key "sampel_ratio"; did you mean "sample_ratio"?`},
		{"tracing: otlp", "tracing must be a mapping, not a string"},
		{"metrics: {listen: ':9'}", `unknown metrics key "listen"`},
	} {
		_, err := Parse("p.yaml", []byte(observeBase+tc.section+"\n"), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%s) = %v, want error containing %q", tc.section, err, tc.want)
		}
	}
}
