package dsl

import (
	"strconv"

	"gopkg.in/yaml.v3"
)

// Tracing is the top-level `tracing:` section. Package tracing (imported by
// cmd/pipe, not by dsl) turns it into an OpenTelemetry setup; empty fields
// fall back to the standard OTEL_* environment variables there.
type Tracing struct {
	// Exporter is otlp, stdout or none.
	Exporter string
	// Endpoint is the OTLP receiver: host:port (plain text) or a URL.
	Endpoint string
	// Protocol is grpc or http.
	Protocol string
	// SampleRatio, when set, is the share of untraced source messages to
	// trace, 0 to 1.
	SampleRatio *float64
	ServiceName string
	// QueueSize bounds the spans waiting for export; 0 means the default.
	QueueSize int
	// Blocking makes a full span queue apply backpressure instead of
	// dropping spans.
	Blocking bool
}

// Metrics is the top-level `metrics:` section.
type Metrics struct {
	// HTTP is the address serving /metrics, /healthz and /readyz, e.g.
	// 127.0.0.1:9464; `pipe run --http` overrides it.
	HTTP string
}

var (
	tracingKeys = []string{"exporter", "endpoint", "protocol", "sample_ratio", "service_name", "queue_size", "blocking"}
	metricsKeys = []string{"http"}
)

func (p *parser) parseObserve(top map[string]*yaml.Node) {
	if v := top["tracing"]; v != nil {
		p.c.Tracing = p.tracing(v)
	}
	if v := top["metrics"]; v != nil {
		p.c.Metrics = p.metrics(v)
	}
}

func (p *parser) tracing(v *yaml.Node) *Tracing {
	t := &Tracing{}
	if v.Kind != yaml.MappingNode {
		p.errorf(v, "tracing must be a mapping, not %s", kindName(v))
		return t
	}
	p.pairs(v, func(k, v *yaml.Node) {
		switch k.Value {
		case "exporter":
			t.Exporter = p.oneOf(v, "tracing.exporter", "otlp", "stdout", "none")
		case "protocol":
			t.Protocol = p.oneOf(v, "tracing.protocol", "grpc", "http")
		case "endpoint":
			t.Endpoint = p.str(v, "tracing.endpoint")
		case "service_name":
			t.ServiceName = p.str(v, "tracing.service_name")
		case "sample_ratio":
			r, err := strconv.ParseFloat(v.Value, 64)
			if v.Kind != yaml.ScalarNode || (v.Tag != "!!float" && v.Tag != "!!int") || err != nil || r < 0 || r > 1 {
				p.errorf(v, "tracing.sample_ratio: expected a number from 0 to 1, got %s", p.show(v))
				return
			}
			t.SampleRatio = &r
		case "queue_size":
			t.QueueSize = p.intIn(v, "tracing.queue_size", 1, 1<<24)
		case "blocking":
			b, err := strconv.ParseBool(v.Value)
			if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" || err != nil {
				p.errorf(v, "tracing.blocking: expected true or false, got %s", p.show(v))
				return
			}
			t.Blocking = b
		default:
			p.unknownKey(k, "tracing key", tracingKeys)
		}
	})
	return t
}

func (p *parser) metrics(v *yaml.Node) *Metrics {
	m := &Metrics{}
	if v.Kind != yaml.MappingNode {
		p.errorf(v, "metrics must be a mapping, not %s", kindName(v))
		return m
	}
	p.pairs(v, func(k, v *yaml.Node) {
		switch k.Value {
		case "http":
			m.HTTP = p.str(v, "metrics.http")
		default:
			p.unknownKey(k, "metrics key", metricsKeys)
		}
	})
	return m
}

func (p *parser) str(v *yaml.Node, what string) string {
	if v.Kind != yaml.ScalarNode || v.Tag != "!!str" {
		p.errorf(v, "%s: expected a string, got %s", what, p.show(v))
		return ""
	}
	return v.Value
}

func (p *parser) oneOf(v *yaml.Node, what string, allowed ...string) string {
	s := p.str(v, what)
	if s == "" {
		return ""
	}
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	p.unknownKey(v, what+" value", allowed)
	return ""
}
