package tracing_test

import (
	"bytes"
	"context"
	"net"
	"time"

	"go.uber.org/goleak"
	"strings"
	"testing"

	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/tracing"
)

func ratio(r float64) *float64 { return &r }

// traced hands p's Tracer n source messages without a trace context and
// returns how many it traced.
func traced(p *tracing.Provider, n int) int {
	if p.Tracer == nil {
		return 0
	}
	node := &pipeline.NodeInfo{Pipeline: "p", Name: "in", Kind: "generate", Role: pipeline.RoleSource}
	count := 0
	for range n {
		if done := p.Tracer.Source(node, pipeline.NewMessage([]byte(`{}`), nil)); done != nil {
			count++
			done(nil)
		}
	}
	return count
}

func TestNewReadsTheSamplerFromTheStandardEnvironment(t *testing.T) {
	for _, c := range []struct {
		sampler, arg string
		file         *float64
		want         int // of 100 messages; -1: tracing entirely off
		err          string
	}{
		{want: 100},
		{arg: "0", want: 0},
		{sampler: "traceidratio", arg: "1", want: 100},
		{sampler: "parentbased_traceidratio", arg: "0", want: 0},
		{sampler: "always_on", arg: "0", want: 100}, // the ARG belongs to ratio samplers only
		{sampler: "parentbased_always_off", want: 0},
		{sampler: "always_off", want: -1},
		{sampler: "always_off", file: ratio(1), want: 100}, // the file wins
		{arg: "0", file: ratio(1), want: 100},
		{sampler: "jaeger_remote", err: `OTEL_TRACES_SAMPLER="jaeger_remote" is not supported`},
		{arg: "half", err: `OTEL_TRACES_SAMPLER_ARG="half" is not a number`},
		{arg: "2", err: "sample ratio 2 is outside 0..1"},
		{arg: "NaN", err: "sample ratio NaN is outside 0..1"},
		{file: ratio(-0.5), err: "sample ratio -0.5 is outside 0..1"},
	} {
		t.Run(c.sampler+"/"+c.arg, func(t *testing.T) {
			t.Setenv("OTEL_TRACES_SAMPLER", c.sampler)
			t.Setenv("OTEL_TRACES_SAMPLER_ARG", c.arg)
			p, err := tracing.New(context.Background(), tracing.Config{Exporter: "stdout", SampleRatio: c.file, Stdout: &bytes.Buffer{}})
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("New() = %v, want an error containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer p.Shutdown(context.Background())
			if c.want < 0 {
				if p.Tracer != nil || p.TracerProvider != nil {
					t.Errorf("always_off: New() set up tracing")
				}
				return
			}
			if got := traced(p, 100); got != c.want {
				t.Errorf("traced %d of 100 messages, want %d", got, c.want)
			}
		})
	}
}

func TestNewExportsToStdoutAndCountsEverySpan(t *testing.T) {
	var out bytes.Buffer
	p, err := tracing.New(context.Background(), tracing.Config{Exporter: "stdout", ServiceName: "svc", Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	if n := traced(p, 3); n != 3 {
		t.Fatalf("traced %d of 3", n)
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s != (tracing.Stats{Ended: 3, Exported: 3}) {
		t.Errorf("Stats() = %+v, want 3 ended and exported", s)
	}
	if got := strings.Count(out.String(), `"Name":"source in"`); got != 3 {
		t.Errorf("stdout has %d root spans, want 3:\n%s", got, out.String())
	}
	if !strings.Contains(out.String(), `"svc"`) {
		t.Error("stdout spans lack the service name svc")
	}
}

func TestNewRejectsUnknownExportersAndProtocols(t *testing.T) {
	for _, c := range []struct {
		cfg  tracing.Config
		want string
	}{
		{tracing.Config{Exporter: "zipkin"}, `exporter must be otlp, stdout or none, not "zipkin"`},
		{tracing.Config{Exporter: "otlp", Protocol: "thrift"}, `protocol must be grpc or http, not "thrift"`},
	} {
		if _, err := tracing.New(context.Background(), c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) = %v, want %q", c.cfg, err, c.want)
		}
	}
}

func TestNewWithExporterNoneInstallsNoTracer(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "")
	p, err := tracing.New(context.Background(), tracing.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Tracer != nil || p.Stats() != (tracing.Stats{}) || p.Shutdown(context.Background()) != nil {
		t.Errorf("New(no exporter) = %+v, want a Provider that does nothing", p)
	}
}

// closedPort returns 127.0.0.1:port where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// Given an OTLP collector that is down, when the run ends and shutdown
// gives up on the export, then every span is counted as failed, none lost
// from the count.
func TestWithTheCollectorDownEveryLostSpanIsCountedAsFailed(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, proto := range []string{"grpc", "http"} {
		t.Run(proto, func(t *testing.T) {
			p, err := tracing.New(context.Background(), tracing.Config{
				Exporter: "otlp", Protocol: proto, Endpoint: closedPort(t)})
			if err != nil {
				t.Fatal(err)
			}
			tr := p.TracerProvider.Tracer("test")
			for range 100 {
				_, s := tr.Start(context.Background(), "s")
				s.End()
			}
			// The exporter retries a refused connection for 10 s; the run
			// gives shutdown less.
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			_ = p.Shutdown(ctx)
			if s := p.Stats(); s != (tracing.Stats{Ended: 100, Failed: 100}) {
				t.Errorf("Stats() = %+v, want all 100 spans failed", s)
			}
		})
	}
}
