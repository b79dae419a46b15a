package live

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

// gatedWriter is a client that reads slowly: each Write waits for a value
// on gate.
type gatedWriter struct {
	*httptest.ResponseRecorder
	gate    chan struct{}
	writing chan struct{}
	mu      sync.Mutex
}

func (g *gatedWriter) Write(b []byte) (int, error) {
	g.writing <- struct{}{}
	<-g.gate
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ResponseRecorder.Write(b)
}

func TestATapSkipsWhatASlowReaderHasNoRoomForAndCountsIt(t *testing.T) {
	r := start(t)
	s := r.server(Options{TapBuffer: 2, Redact: func(v string) string { return strings.ReplaceAll(v, "hunter22", "(hidden)") }})
	w := &gatedWriter{ResponseRecorder: httptest.NewRecorder(), gate: make(chan struct{}), writing: make(chan struct{})}
	req := httptest.NewRequest("GET", "/api/v1/tap/st?n=3", nil)
	req.SetPathValue("node", "st")
	attached := make(chan struct{})
	s.onTap = func() { close(attached) }
	done := make(chan struct{})
	go func() { defer close(done); s.tap(w, req) }()
	<-attached
	// The first message blocks the reader in its first write.
	r.send(`{"n":0,"pw":"hunter22"}`)
	<-w.writing
	// Given a reader stuck in its first write and a buffer of 2, when 7
	// more messages leave st, then 2 wait and 5 are skipped, and the
	// pipeline never waited for the reader.
	for i := 1; i <= 7; i++ {
		r.send(fmt.Sprintf(`{"n":%d}`, i))
	}
	close(w.gate)
	for range 2 {
		<-w.writing
	}
	<-done

	var lines []TapLine
	sc := bufio.NewScanner(bytes.NewReader(w.Body.Bytes()))
	for sc.Scan() {
		var l TapLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("tap line is not JSON: %v: %s", err, sc.Text())
		}
		lines = append(lines, l)
	}
	if len(lines) != 3 {
		t.Fatalf("tap wrote %d lines, want 3 (n=3):\n%s", len(lines), w.Body.String())
	}
	if got := string(lines[0].Body); !strings.Contains(got, `"pw":"(hidden)"`) {
		t.Errorf("first line body = %s, want the secret redacted", got)
	}
	if lines[1].Skipped != 5 || string(lines[1].Body) != `{"n":1}` || string(lines[2].Body) != `{"n":2}` {
		t.Errorf("lines 2 and 3 = %+v %+v, want n 1 and 2 with 5 skipped", lines[1], lines[2])
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("Content-Type = %q, want application/x-ndjson", ct)
	}
}

func TestATapRefusesAnUnknownNodeAndABadFilter(t *testing.T) {
	r := start(t)
	h := r.server(Options{Filter: func(string) (func([]byte) (bool, error), error) {
		return nil, fmt.Errorf("undeclared reference to 'x'")
	}}).Handler(probes)
	for target, want := range map[string]string{
		"/api/v1/tap/nope":           `no node named "nope"`,
		"/api/v1/tap/st?filter=x":    "filter: undeclared reference",
		"/api/v1/tap/st?n=0":         "n: want a positive number",
		"/api/v1/tap/st?n=lots&x=1":  "n: want a positive number",
		"/api/v1/nodes/st/../errors": "",
	} {
		code, body := get(t, h, target)
		if want != "" && (code/100 != 4 || !strings.Contains(body, want)) {
			t.Errorf("GET %s = %d %q, want 4xx saying %q", target, code, body, want)
		}
	}
}

// BenchmarkTapSlowReader runs messages through a node with no tap, and
// with a tap whose reader never reads: the node only ever offers to a full
// buffer and counts skips, so its throughput stays the same.
func BenchmarkTapSlowReader(b *testing.B) {
	for _, tapped := range []bool{false, true} {
		b.Run(fmt.Sprintf("tapped=%v", tapped), func(b *testing.B) {
			p := pipeline.New("bench")
			src := make(feed)
			pass := pipelinetest.ProcessorFunc(func(_ context.Context, m *pipeline.Message) (*pipeline.Message, error) { return m, nil })
			_ = p.AddSource("src", "feed", src)
			_ = p.AddStage("st", "pass", pass, pipeline.NodeOptions{})
			_ = p.AddSink("out", "sink", &pipelinetest.Sink{}, pipeline.NodeOptions{})
			_ = p.Connect("src", "", "st")
			_ = p.Connect("st", "", "out")
			s := New(func() (*pipeline.Pipeline, Graph) { return p, Graph{} }, Options{})
			var wg sync.WaitGroup
			wg.Go(func() { _ = p.Run(context.Background()) })
			if tapped {
				w := &gatedWriter{ResponseRecorder: httptest.NewRecorder(), gate: make(chan struct{}), writing: make(chan struct{}, 1)}
				req := httptest.NewRequest("GET", "/api/v1/tap/st", nil)
				req.SetPathValue("node", "st")
				attached := make(chan struct{})
				s.onTap = func() { close(attached) }
				done := make(chan struct{})
				go func() { defer close(done); s.tap(w, req) }()
				defer func() {
					s.Close()
					go func() {
						for range w.writing {
						}
					}()
					close(w.gate)
					<-done
					close(w.writing)
				}()
				<-attached
			}
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				src <- fmt.Sprintf(`{"id":%d}`, i)
			}
			close(src)
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}

func TestATapEndsWhenItsPipelineIsReplaced(t *testing.T) {
	a, b := start(t), start(t)
	cur := a.p
	var mu sync.Mutex
	s := New(func() (*pipeline.Pipeline, Graph) { mu.Lock(); defer mu.Unlock(); return cur, Graph{} }, Options{})
	s.sample(time.Now())
	attached := make(chan struct{})
	s.onTap = func() { close(attached) }
	req := httptest.NewRequest("GET", "/api/v1/tap/st", nil)
	req.SetPathValue("node", "st")
	done := make(chan struct{})
	go func() { defer close(done); s.tap(httptest.NewRecorder(), req) }()
	<-attached
	a.send("x")
	mu.Lock()
	cur = b.p
	mu.Unlock()
	s.sample(time.Now())
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the tap on the replaced pipeline did not end")
	}
	if snap := s.latest.Load(); snap.IntervalSeconds != 0 {
		t.Fatalf("first snapshot of the new pipeline has interval %v, want 0 (no rates across a reload)", snap.IntervalSeconds)
	}
}
