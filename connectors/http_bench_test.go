package connectors

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/pipeline"
)

// BenchmarkHTTPSink measures messages per second through the sink to a
// loopback server, one message per request and 100 per batch request, with
// 2*GOMAXPROCS concurrent writers sharing 4 connections.
func BenchmarkHTTPSink(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()
	body := []byte(`{"id":12345,"level":"info","amount":17.5,"note":"benchmark message"}`)
	for _, bc := range []struct {
		name   string
		size   int
		format string
	}{{"single", 1, "array"}, {"batch100/array", 100, "array"}, {"batch100/ndjson", 100, "ndjson"}} {
		b.Run(bc.name, func(b *testing.B) {
			s, err := newHTTPSink(&httpSinkConfig{URL: srv.URL, Method: "POST", BatchFormat: bc.format, MaxConns: 4},
				component.Env{Clock: pipeline.SystemClock})
			if err != nil {
				b.Fatal(err)
			}
			defer s.(*httpSink).Close(context.Background())
			b.SetParallelism(2) // 2 x GOMAXPROCS writers
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					var m *pipeline.Message
					if bc.size == 1 {
						m = pipeline.NewMessage(body, nil)
					} else {
						ms := make([]*pipeline.Message, bc.size)
						for i := range ms {
							ms[i] = pipeline.NewMessage(body, nil)
						}
						m = pipeline.NewBatch(ms)
					}
					if err := s.Write(context.Background(), m); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*bc.size)/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}
