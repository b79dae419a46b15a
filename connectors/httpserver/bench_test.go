package httpserver

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/pipeline"
)

type discard struct{}

func (discard) Write(context.Context, *pipeline.Message) error { return nil }

// BenchmarkNDJSONRequest measures one POST of 100 NDJSON lines, answered
// after all 100 messages were acked by a sink that discards them.
func BenchmarkNDJSONRequest(b *testing.B) {
	cfg := defaults()
	cfg.Address, cfg.Framing, cfg.Auth = "127.0.0.1:0", "ndjson", "none"
	s, _ := newSource(&cfg, component.Env{Logger: slog.New(slog.DiscardHandler)})
	p := pipeline.New("bench")
	p.Logger = slog.New(slog.DiscardHandler)
	_ = p.AddSource("in", "http_server", s)
	_ = p.AddSink("out", "discard", discard{}, pipeline.NodeOptions{Workers: 4})
	_ = p.Connect("in", "", "out")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	<-s.(*source).ready
	url := "http://" + s.(*source).addr.String()
	body := strings.Repeat(`{"id":1,"level":"info","msg":"hello"}`+"\n", 100)
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := http.Post(url, "application/x-ndjson", strings.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "msgs/s")
	cancel()
	<-done
	http.DefaultClient.CloseIdleConnections()
}
