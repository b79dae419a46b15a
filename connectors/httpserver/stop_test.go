package httpserver

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

// TestStopRacingRequestsAnswersEveryRequestAndLosesNoLine: Given clients
// posting single and NDJSON requests as fast as they can, when the pipeline
// stops under them, then no handler panics, every request is answered 200
// or 503, and the sink holds exactly the lines the answers say were taken.
func TestStopRacingRequestsAnswersEveryRequestAndLosesNoLine(t *testing.T) {
	for round := range 8 {
		sink := &pipelinetest.Sink{}
		s := start(t, func(c *config) { c.Framing = "ndjson" }, opts{sink: sink, buffer: 1})
		var (
			taken    atomic.Int64
			answered atomic.Int64
			wg       sync.WaitGroup
			stopOnce sync.Once
			stopping atomic.Bool
		)
		stop := func() { stopping.Store(true); s.cancel() }
		for c := range 12 {
			wg.Go(func() {
				client := &http.Client{Transport: &http.Transport{}}
				defer client.CloseIdleConnections()
				lines := 1 + c%4
				body := strings.Repeat("{\"c\":1}\n", lines)
				for {
					req, _ := http.NewRequest(http.MethodPost, s.url, strings.NewReader(body))
					resp, err := client.Do(req)
					if err != nil {
						// Once the listener closes, new connections and
						// idle keep-alive ones are refused before any
						// handler sees the request; the count below checks
						// that none of their lines were taken.
						if !stopping.Load() {
							t.Errorf("round %d: POST before the stop: %v", round, err)
						}
						return
					}
					var a answer
					_ = json.NewDecoder(resp.Body).Decode(&a)
					resp.Body.Close()
					switch resp.StatusCode {
					case http.StatusOK:
						taken.Add(int64(lines))
						if answered.Add(1) == 60 {
							stopOnce.Do(stop)
						}
					case http.StatusServiceUnavailable:
						taken.Add(int64(a.Accepted))
						return
					default:
						t.Errorf("round %d: POST = %d, want 200 or 503", round, resp.StatusCode)
						return
					}
				}
			})
		}
		wg.Wait()
		stopOnce.Do(stop)
		if err := <-s.done; err != nil {
			t.Fatalf("round %d: Run = %v", round, err)
		}
		s.done <- nil
		if got, want := int64(len(sink.Bodies())), taken.Load(); got != want {
			t.Fatalf("round %d: sink holds %d lines, answers took %d", round, got, want)
		}
		if l := s.logs.String(); strings.Contains(l, "panic") {
			t.Fatalf("round %d: a handler panicked:\n%s", round, l)
		}
		if t.Failed() {
			return
		}
	}
}
