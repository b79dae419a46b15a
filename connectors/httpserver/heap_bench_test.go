package httpserver

import (
	"context"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

// BenchmarkHeap200BigBodies reports the peak heap while 200 clients post
// 1 MB bodies to a pipeline whose sink holds them, with the default
// max_requests and with a cap above 200 (as before max_requests existed).
//
//	go test -run '^$' -bench Heap200 -benchtime 1x ./connectors/httpserver
func BenchmarkHeap200BigBodies(b *testing.B) {
	for _, maxReq := range []int{defaults().MaxRequests, 1000} {
		b.Run("max_requests="+itoa(maxReq), func(b *testing.B) {
			for range b.N {
				b.ReportMetric(float64(heap200(b, maxReq))/(1<<20), "MB-peak")
			}
		})
	}
}

func heap200(b *testing.B, maxReq int) uint64 {
	cfg := defaults()
	cfg.Address, cfg.Auth, cfg.MaxRequests, cfg.MaxConns, cfg.AcceptTimeout = "127.0.0.1:0", "none", maxReq, 1000, time.Minute
	s, _ := newSource(&cfg, component.Env{Logger: slog.New(slog.DiscardHandler)})
	src := s.(*source)
	sink := &pipelinetest.Sink{Gate: make(chan struct{})}
	p := pipeline.New("bench")
	p.Logger = slog.New(slog.DiscardHandler)
	_ = p.AddSource("in", "http_server", s)
	_ = p.AddSink("out", "held", sink, pipeline.NodeOptions{Buffer: 1})
	_ = p.Connect("in", "", "out")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	<-src.ready
	url := "http://" + src.addr.String()
	body := strings.Repeat("x", 1_000_000)
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			c := &http.Client{Transport: &http.Transport{}}
			if resp, err := c.Post(url, "text/plain", strings.NewReader(body)); err == nil {
				resp.Body.Close()
			}
		})
	}
	for len(src.limits.requests) < min(200, maxReq) {
		time.Sleep(time.Millisecond)
	}
	var peak uint64
	for range 40 { // sample while the bodies are read and held
		time.Sleep(10 * time.Millisecond)
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		peak = max(peak, m.HeapInuse)
	}
	close(sink.Gate)
	wg.Wait()
	cancel()
	<-done
	return peak - min(peak, before.HeapInuse)
}

func itoa(n int) string { return strconv.Itoa(n) }
