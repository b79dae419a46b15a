package tracing

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Config is the `tracing:` section of a pipeline file. The zero value
// exports nothing. Unset fields fall back to the standard OTEL_*
// environment variables, then to the defaults below.
type Config struct {
	// Exporter is otlp, stdout or none (OTEL_TRACES_EXPORTER; default none).
	Exporter string
	// Endpoint is host:port (plain text) or a URL (http:// or https://) of
	// the OTLP receiver; empty means the exporter's OTEL_EXPORTER_OTLP_*
	// variables or localhost:4317 (grpc) / localhost:4318 (http).
	Endpoint string
	// Protocol is grpc or http (OTEL_EXPORTER_OTLP_PROTOCOL; default grpc).
	Protocol string
	// SampleRatio is the share of source messages without an incoming trace
	// context that are traced, 0 to 1; nil means OTEL_TRACES_SAMPLER_ARG
	// or 1. Messages with a sampled incoming traceparent are always traced.
	SampleRatio *float64
	// ServiceName is the service.name resource attribute; OTEL_SERVICE_NAME
	// overrides it; default "pipe".
	ServiceName string
	// QueueSize bounds the spans waiting for export (default 2048). When it
	// is full, spans are dropped and counted, unless Blocking.
	QueueSize int
	// Blocking makes a full queue slow the pipeline down instead of
	// dropping spans.
	Blocking bool
	// Stdout receives the stdout exporter's output; nil means os.Stdout.
	Stdout io.Writer
}

// Provider owns the OpenTelemetry SDK set up from a Config.
type Provider struct {
	// Tracer is the pipeline hook; assign it to pipeline.Pipeline.Tracer.
	Tracer *Tracer
	// TracerProvider is the SDK provider, nil when exporting nothing.
	TracerProvider *sdktrace.TracerProvider
	batcher        *Batcher
}

// Stats counts sampled spans. Ended spans are queued for export, then
// Exported, or Failed (the exporter returned an error), or Dropped (the
// queue was full); Ended minus the other three are still queued.
type Stats struct {
	Ended, Exported, Failed, Dropped int64
}

// Propagator is the W3C trace context and baggage propagator that [New]
// installs globally (otel.SetTextMapPropagator). HTTP requests
// (internal/httpclient) and broker headers (NATS, Kafka, AMQP headers, MQTT
// v5 user properties) carry a message's span with it; the Tracer reads the
// same keys from a source message's Meta.
var Propagator propagation.TextMapPropagator = propagation.NewCompositeTextMapPropagator(
	propagation.TraceContext{}, propagation.Baggage{})

// New sets up tracing from cfg and installs [Propagator] as the global
// propagator, even with exporter none, so that a pipe between two traced
// services passes their trace context on. It opens no connection: OTLP
// exporters connect lazily. With exporter none it returns a Provider whose
// Tracer is nil, so the pipeline does no tracing work at all.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	otel.SetTextMapPropagator(Propagator)
	exp := cfg.Exporter
	if exp == "" {
		exp = os.Getenv("OTEL_TRACES_EXPORTER")
	}
	if exp == "" || exp == "none" {
		return &Provider{}, nil
	}
	ratio, off, err := sampleRatio(cfg.SampleRatio)
	if err != nil {
		return nil, err
	}
	if off {
		return &Provider{}, nil
	}
	se, err := newExporter(ctx, exp, cfg)
	if err != nil {
		return nil, err
	}
	name := cfg.ServiceName
	if name == "" {
		name = "pipe"
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", name)),
		resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	b := NewBatcher(se, BatcherOptions{QueueSize: cfg.QueueSize, Blocking: cfg.Blocking})
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		sdktrace.WithSampler(Sampler()),
		sdktrace.WithSpanProcessor(b),
	)
	return &Provider{Tracer: NewTracer(tp, ratio), TracerProvider: tp, batcher: b}, nil
}

// sampleRatio is the share of new source messages to trace: set (the
// file's sample_ratio) or else what OTEL_TRACES_SAMPLER and
// OTEL_TRACES_SAMPLER_ARG say, or 1. off means OTEL_TRACES_SAMPLER is
// always_off: no tracing at all, not even for sampled incoming traces.
func sampleRatio(set *float64) (ratio float64, off bool, err error) {
	ratio = 1
	if set != nil {
		ratio = *set
	} else {
		switch v := os.Getenv("OTEL_TRACES_SAMPLER"); v {
		case "", "traceidratio", "parentbased_traceidratio":
			if arg := os.Getenv("OTEL_TRACES_SAMPLER_ARG"); arg != "" {
				if ratio, err = strconv.ParseFloat(arg, 64); err != nil {
					return 0, false, fmt.Errorf("tracing: OTEL_TRACES_SAMPLER_ARG=%q is not a number", arg)
				}
			}
		case "always_on", "parentbased_always_on":
		case "parentbased_always_off":
			ratio = 0
		case "always_off":
			return 0, true, nil
		default:
			return 0, false, fmt.Errorf("tracing: OTEL_TRACES_SAMPLER=%q is not supported: use always_on, always_off, traceidratio or their parentbased_ forms", v)
		}
	}
	if !(ratio >= 0 && ratio <= 1) {
		return 0, false, fmt.Errorf("tracing: sample ratio %v is outside 0..1", ratio)
	}
	return ratio, false, nil
}

// Sampler is the SDK sampler a [Tracer] expects: parent-based, so a span
// whose parent is sampled is recorded; new roots are always sampled because
// the Tracer itself decides which source messages get one.
func Sampler() sdktrace.Sampler { return sdktrace.ParentBased(sdktrace.AlwaysSample()) }

func newExporter(ctx context.Context, exp string, cfg Config) (sdktrace.SpanExporter, error) {
	switch exp {
	case "stdout", "console":
		w := cfg.Stdout
		if w == nil {
			w = os.Stdout
		}
		return stdouttrace.New(stdouttrace.WithWriter(w))
	case "otlp":
	default:
		return nil, fmt.Errorf("tracing: exporter must be otlp, stdout or none, not %q", exp)
	}
	proto := cfg.Protocol
	if proto == "" {
		proto = os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	}
	if proto == "" {
		proto = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	url := strings.Contains(cfg.Endpoint, "://")
	switch proto {
	case "", "grpc":
		var o []otlptracegrpc.Option
		switch {
		case url:
			o = append(o, otlptracegrpc.WithEndpointURL(cfg.Endpoint))
		case cfg.Endpoint != "":
			o = append(o, otlptracegrpc.WithEndpoint(cfg.Endpoint), otlptracegrpc.WithInsecure())
		}
		return otlptracegrpc.New(ctx, o...)
	case "http", "http/protobuf":
		var o []otlptracehttp.Option
		switch {
		case url:
			o = append(o, otlptracehttp.WithEndpointURL(cfg.Endpoint))
		case cfg.Endpoint != "":
			o = append(o, otlptracehttp.WithEndpoint(cfg.Endpoint), otlptracehttp.WithInsecure())
		}
		return otlptracehttp.New(ctx, o...)
	}
	return nil, fmt.Errorf("tracing: protocol must be grpc or http, not %q", proto)
}

// Stats returns the span counts so far.
func (p *Provider) Stats() Stats {
	if p.batcher == nil {
		return Stats{}
	}
	return p.batcher.Stats()
}

// Shutdown flushes queued spans and stops the exporter. It is safe on a
// Provider that exports nothing.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p.TracerProvider == nil {
		return nil
	}
	return p.TracerProvider.Shutdown(ctx)
}
