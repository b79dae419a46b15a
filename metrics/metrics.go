// Package metrics exports a running pipeline's node statistics as
// OpenTelemetry metrics and serves them, with health probes, over HTTP for
// Prometheus.
//
// Counters are observable instruments read from [pipeline.Pipeline.Stats]
// at scrape time, so the message path pays nothing for them.
package metrics

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/pipe-dsl/pipe/pipeline"
)

// StatsFunc returns the current pipeline's name and node statistics. With
// `pipe run --watch` the pipeline behind it changes; counters then restart.
type StatsFunc func() (name string, stats []pipeline.NodeStats)

// SpanStats counts sampled spans: Ended spans are queued for export, then
// Exported, Failed (the exporter returned an error, or they were still
// queued when the exporter was shut down) or Dropped (the queue was full);
// the rest are still queued.
type SpanStats struct {
	Ended, Exported, Failed, Dropped int64
}

// SpanStatsFunc returns the span counts so far.
type SpanStatsFunc func() SpanStats

// Exporter serves /metrics, /healthz and /readyz. Create it with New; it
// is safe for concurrent use.
type Exporter struct {
	reg   *prometheus.Registry
	mp    *sdkmetric.MeterProvider
	ready atomic.Bool
}

// New registers the pipeline instruments (see docs/observability.md for
// the names) reading from stats, and span counters reading from spans if it
// is not nil. The Exporter starts unready; call SetReady.
func New(stats StatsFunc, spans SpanStatsFunc) (*Exporter, error) {
	reg := prometheus.NewRegistry()
	pe, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, fmt.Errorf("metrics: prometheus exporter: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(pe),
		sdkmetric.WithResource(resource.NewSchemaless(attribute.String("service.name", "pipe"))))
	e := &Exporter{reg: reg, mp: mp}
	if err := register(mp.Meter("github.com/pipe-dsl/pipe/metrics"), stats, spans); err != nil {
		return nil, err
	}
	for _, c := range []prometheus.Collector{
		latencyCollector{stats}, figureCollector{stats},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: register collector: %w", err)
		}
	}
	return e, nil
}

// node counter instruments, by the NodeStats field they read.
var nodeCounters = []struct {
	name, desc string
	value      func(*pipeline.NodeStats) int64
	sourceOnly bool
	noSource   bool
}{
	{"pipe.node.messages.in", "Messages received by the node.", func(s *pipeline.NodeStats) int64 { return s.In }, false, true},
	{"pipe.node.messages.out", "Messages produced (sources), sent on (stages) or delivered (sinks).", func(s *pipeline.NodeStats) int64 { return s.Out }, false, false},
	{"pipe.node.messages.failed", "Messages that failed at the node.", func(s *pipeline.NodeStats) int64 { return s.Failed }, false, false},
	{"pipe.node.messages.dropped", "Messages dropped on purpose (filtered, unrouted).", func(s *pipeline.NodeStats) int64 { return s.Dropped }, false, false},
	{"pipe.node.messages.dead_lettered", "Failed messages handed to the dead-letter sink.", func(s *pipeline.NodeStats) int64 { return s.DeadLettered }, false, false},
	{"pipe.node.messages.nacked", "Messages nacked at the node; for a source, source messages acknowledged with an error.", func(s *pipeline.NodeStats) int64 { return s.Nacked }, false, false},
	{"pipe.source.messages.acked", "Source messages acknowledged as delivered.", func(s *pipeline.NodeStats) int64 { return s.Acked }, true, false},
}

func register(m metric.Meter, stats StatsFunc, spans SpanStatsFunc) error {
	var obs []metric.Observable
	counters := make([]metric.Int64ObservableCounter, len(nodeCounters))
	for i, c := range nodeCounters {
		inst, err := m.Int64ObservableCounter(c.name, metric.WithDescription(c.desc))
		if err != nil {
			return err
		}
		counters[i] = inst
		obs = append(obs, inst)
	}
	queued, err := m.Int64ObservableGauge("pipe.node.queue.length",
		metric.WithDescription("Messages waiting in the node's input buffer (shared by its incoming edges)."))
	if err != nil {
		return err
	}
	capacity, err := m.Int64ObservableGauge("pipe.node.queue.capacity",
		metric.WithDescription("Capacity of the node's input buffer."))
	if err != nil {
		return err
	}
	obs = append(obs, queued, capacity)
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		name, ss := stats()
		for i := range ss {
			s := &ss[i]
			set := metric.WithAttributeSet(attribute.NewSet(
				attribute.String("pipeline", name), attribute.String("node", s.Name),
				attribute.String("kind", s.Kind), attribute.String("role", s.Role.String())))
			for j, c := range nodeCounters {
				if isSource := s.Role == pipeline.RoleSource; c.sourceOnly && !isSource || c.noSource && isSource {
					continue
				}
				o.ObserveInt64(counters[j], c.value(s), set)
			}
			if s.Role != pipeline.RoleSource {
				o.ObserveInt64(queued, int64(s.Queued), set)
				o.ObserveInt64(capacity, int64(s.Buffer), set)
			}
		}
		return nil
	}, obs...)
	if err != nil || spans == nil {
		return err
	}
	return registerSpans(m, spans)
}

// span instruments, by the SpanStats field they read.
var spanCounters = []struct {
	name, desc string
	value      func(SpanStats) int64
}{
	{"pipe.trace.spans.ended", "Sampled spans ended.", func(s SpanStats) int64 { return s.Ended }},
	{"pipe.trace.spans.exported", "Spans the trace exporter accepted.", func(s SpanStats) int64 { return s.Exported }},
	{"pipe.trace.spans.failed", "Spans lost because the exporter returned an error, or still queued when it was shut down.", func(s SpanStats) int64 { return s.Failed }},
	{"pipe.trace.spans.dropped", "Spans dropped because the export queue was full (or tracing had shut down).", func(s SpanStats) int64 { return s.Dropped }},
}

func registerSpans(m metric.Meter, spans SpanStatsFunc) error {
	var obs []metric.Observable
	counters := make([]metric.Int64ObservableCounter, len(spanCounters))
	for i, c := range spanCounters {
		inst, err := m.Int64ObservableCounter(c.name, metric.WithDescription(c.desc))
		if err != nil {
			return err
		}
		counters[i], obs = inst, append(obs, inst)
	}
	queued, err := m.Int64ObservableGauge("pipe.trace.spans.queued", metric.WithDescription("Spans ended and waiting for export."))
	if err != nil {
		return err
	}
	obs = append(obs, queued)
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s := spans()
		for i, c := range spanCounters {
			o.ObserveInt64(counters[i], c.value(s))
		}
		o.ObserveInt64(queued, s.Ended-s.Exported-s.Failed-s.Dropped)
		return nil
	}, obs...)
	return err
}

// SetReady sets what /readyz answers: 200 when ready, 503 otherwise
// (before the pipeline runs and while it drains).
func (e *Exporter) SetReady(ready bool) { e.ready.Store(ready) }

// Handler serves /metrics (Prometheus text format), /healthz (200 while
// the process runs) and /readyz.
func (e *Exporter) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(e.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !e.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	return mux
}

// Shutdown releases the meter provider.
func (e *Exporter) Shutdown(ctx context.Context) error { return e.mp.Shutdown(ctx) }
