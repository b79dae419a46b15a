package tracing_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/pipe-dsl/pipe/dsl"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
	"github.com/pipe-dsl/pipe/tracing"
)

// countSource sends n small messages.
type countSource struct{ n int }

func (s countSource) Read(ctx context.Context, out pipeline.Outlet) error {
	body := []byte(`{"n":1}`)
	for range s.n {
		if err := out.Send(ctx, pipeline.NewMessage(body, nil)); err != nil {
			return err
		}
	}
	return nil
}

type discard struct{}

func (discard) Write(context.Context, *pipeline.Message) error { return nil }

type noopExporter struct{}

func (noopExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (noopExporter) Shutdown(context.Context) error                             { return nil }

// cpuTime is the process's user and system CPU time so far. CPU per message
// is steadier than wall-clock throughput on a shared machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchCases are tracing off, and 1% and 100% sampling into a no-op
// exporter behind pipe's Batcher and, for comparison, the SDK's
// BatchSpanProcessor.
var benchCases = []struct {
	name      string
	ratio     float64
	processor func() sdktrace.SpanProcessor
}{
	{"sample=off", -1, nil},
	{"sample=0.01/proc=batcher", 0.01, pipeBatcher},
	{"sample=0.01/proc=sdk", 0.01, sdkBatcher},
	{"sample=1/proc=batcher", 1, pipeBatcher},
	{"sample=1/proc=sdk", 1, sdkBatcher},
}

func pipeBatcher() sdktrace.SpanProcessor {
	return tracing.NewBatcher(noopExporter{}, tracing.BatcherOptions{})
}

func sdkBatcher() sdktrace.SpanProcessor { return sdktrace.NewBatchSpanProcessor(noopExporter{}) }

// BenchmarkThroughput runs source -> 2 stages -> sink for each of
// benchCases. scripts/bench-tracing.sh runs the cases interleaved.
func BenchmarkThroughput(b *testing.B) {
	pass := pipelinetest.ProcessorFunc(func(_ context.Context, m *pipeline.Message) (*pipeline.Message, error) { return m, nil })
	for _, c := range benchCases {
		b.Run(c.name, func(b *testing.B) {
			p := pipeline.New("bench")
			must(b, p.AddSource("in", "generate", countSource{n: b.N}))
			must(b, p.AddStage("a", "map", pass, pipeline.NodeOptions{}))
			must(b, p.AddStage("b", "map", pass, pipeline.NodeOptions{}))
			must(b, p.AddSink("out", "drop", discard{}, pipeline.NodeOptions{}))
			must(b, p.Connect("in", "", "a"))
			must(b, p.Connect("a", "", "b"))
			must(b, p.Connect("b", "", "out"))
			var tp *sdktrace.TracerProvider
			if c.ratio >= 0 {
				tp = sdktrace.NewTracerProvider(sdktrace.WithSampler(tracing.Sampler()),
					sdktrace.WithSpanProcessor(c.processor()))
				p.Tracer = tracing.NewTracer(tp, c.ratio)
			}
			b.ReportAllocs()
			b.ResetTimer()
			start, cpu0 := time.Now(), cpuTime()
			if err := p.Run(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/msg")
			b.StopTimer()
			if tp != nil {
				_ = tp.Shutdown(context.Background())
			}
		})
	}
}

// BenchmarkHooks measures the tracer hook alone for one message through a
// source and three nodes (what BenchmarkThroughput adds per message), so
// the cost of tracing can be compared with the pipeline's own cost per
// message without scheduler noise.
func BenchmarkHooks(b *testing.B) {
	nodes := []*pipeline.NodeInfo{
		{Pipeline: "bench", Name: "in", Kind: "generate", Role: pipeline.RoleSource},
		{Pipeline: "bench", Name: "a", Kind: "map", Role: pipeline.RoleStage},
		{Pipeline: "bench", Name: "b", Kind: "map", Role: pipeline.RoleStage},
		{Pipeline: "bench", Name: "out", Kind: "drop", Role: pipeline.RoleSink},
	}
	body := []byte(`{"n":1}`)
	b.Run("none", func(b *testing.B) { // the message allocation, to subtract
		b.ReportAllocs()
		for b.Loop() {
			_ = pipeline.NewMessage(body, nil)
		}
	})
	for _, ratio := range []float64{0, 0.01, 1} {
		b.Run(fmt.Sprintf("ratio=%v", ratio), func(b *testing.B) {
			tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(tracing.Sampler()),
				sdktrace.WithSpanProcessor(pipeBatcher()))
			defer tp.Shutdown(context.Background())
			tr := tracing.NewTracer(tp, ratio)
			b.ReportAllocs()
			for b.Loop() {
				m := pipeline.NewMessage(body, nil)
				done := tr.Source(nodes[0], m)
				if done == nil { // untraced: the runtime skips Enter and Leave
					continue
				}
				for _, n := range nodes[1:] {
					tr.Enter(n, m)
					tr.Leave(n, m, nil)
				}
				done(nil)
			}
		})
	}
}

// BenchmarkQuickstart is BenchmarkThroughput on the README's pipeline shape
// compiled from YAML: generate -> CEL filter (keeps 1 in 10) -> CEL map ->
// drop, where stages do real work per message.
func BenchmarkQuickstart(b *testing.B) {
	for _, c := range benchCases {
		b.Run(c.name, func(b *testing.B) {
			src := fmt.Sprintf(`name: bench
source:
  generate:
    count: %d
    message: '{"id": seq, "level": seq %% 10 == 0 ? "error" : "info", "amount": double(seq) * 1.5}'
stages:
  - filter: msg.level == "error"
  - map: '{"id": msg.id, "cents": int(msg.amount * 100.0)}'
sink:
  drop: {}
`, b.N)
			cfg, err := dsl.Parse("bench.yaml", []byte(src), nil)
			must(b, err)
			p, err := dsl.Compile(cfg, nil)
			must(b, err)
			var tp *sdktrace.TracerProvider
			if c.ratio >= 0 {
				tp = sdktrace.NewTracerProvider(sdktrace.WithSampler(tracing.Sampler()),
					sdktrace.WithSpanProcessor(c.processor()))
				p.Tracer = tracing.NewTracer(tp, c.ratio)
			}
			b.ReportAllocs()
			b.ResetTimer()
			start, cpu0 := time.Now(), cpuTime()
			must(b, p.Run(context.Background()))
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/msg")
			b.StopTimer()
			if tp != nil {
				_ = tp.Shutdown(context.Background())
			}
		})
	}
}
