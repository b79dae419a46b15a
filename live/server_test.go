package live

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pipe-dsl/pipe/dsl"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// feed is a source that sends what the test puts on its channel.
type feed chan string

func (f feed) Read(ctx context.Context, out pipeline.Outlet) error {
	for b := range f {
		if err := out.Send(ctx, pipeline.NewMessage([]byte(b), nil)); err != nil {
			return nil
		}
	}
	return nil
}

// running is src -> st (pass, or fail when the body says so) -> out, run
// until the test ends; entered receives a value as out starts each write.
type running struct {
	p       *pipeline.Pipeline
	src     feed
	entered chan struct{}
}

func start(t *testing.T) *running {
	t.Helper()
	r := &running{p: pipeline.New("test"), src: make(feed), entered: make(chan struct{})}
	r.p.Logger = slog.New(slog.DiscardHandler)
	st := pipelinetest.ProcessorFunc(func(_ context.Context, m *pipeline.Message) (*pipeline.Message, error) {
		if strings.Contains(string(m.Body), "fail") {
			return nil, pipeline.WithReason("bad_input", io.ErrUnexpectedEOF)
		}
		return m, nil
	})
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(r.p.AddSource("src", "feed", r.src))
	must(r.p.AddStage("st", "pass", st, pipeline.NodeOptions{Buffer: 4}))
	must(r.p.AddSink("out", "sink", &pipelinetest.Sink{Entered: r.entered}, pipeline.NodeOptions{Buffer: 4}))
	must(r.p.Connect("src", "", "st"))
	must(r.p.Connect("st", "", "out"))
	var wg sync.WaitGroup
	wg.Go(func() { _ = r.p.Run(context.Background()) })
	t.Cleanup(func() {
		close(r.src)
		wg.Wait()
	})
	return r
}

// send sends bodies and waits until out has started writing each one.
func (r *running) send(bodies ...string) {
	for _, b := range bodies {
		r.src <- b
		if !strings.Contains(b, "fail") {
			<-r.entered
		}
	}
}

func (r *running) server(opts Options) *Server {
	g := Graph{Name: "test", Nodes: []dsl.GraphNode{
		{Name: "src", Kind: "feed", Role: pipeline.RoleSource},
		{Name: "st", Kind: "pass", Role: pipeline.RoleStage, Settings: []string{"workers: 2"}},
		{Name: "out", Kind: "sink", Role: pipeline.RoleSink},
	}, Edges: []dsl.GraphEdge{{From: "src", To: "st"}, {From: "st", To: "out"}}}
	return New(func() (*pipeline.Pipeline, Graph) { return r.p, g }, opts)
}

var probes = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "probe") })

func get(t *testing.T, h http.Handler, target string, header ...string) (int, string) {
	t.Helper()
	req := httptest.NewRequest("GET", target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func node(t *testing.T, s *Snapshot, name string) Node {
	t.Helper()
	for _, n := range s.Nodes {
		if n.Name == name {
			return n
		}
	}
	t.Fatalf("snapshot has no node %q", name)
	return Node{}
}

func TestStatsCountEveryNodeAndRatesAreOverTheLastInterval(t *testing.T) {
	r := start(t)
	s := r.server(Options{})
	h := s.Handler(probes)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r.send("fail", "a", "b", "c") // st works in order: "fail" is done once "c" is written
	s.sample(t0)
	r.send("d", "e")
	s.sample(t0.Add(2 * time.Second))

	code, body := get(t, h, "/api/v1/stats")
	var snap Snapshot
	if code != 200 || json.Unmarshal([]byte(body), &snap) != nil {
		t.Fatalf("GET /api/v1/stats = %d %s, want 200 and a snapshot", code, body)
	}
	if snap.Seq != 2 || snap.IntervalSeconds != 2 || snap.Pipeline != "test" {
		t.Fatalf("snapshot seq %d interval %v pipeline %q, want 2, 2s, test", snap.Seq, snap.IntervalSeconds, snap.Pipeline)
	}
	st := node(t, &snap, "st")
	if st.In != 6 || st.Out != 5 || st.Failed != 1 || st.RateIn != 1 || st.RateOut != 1 || st.Role != "stage" {
		t.Fatalf("st = %+v, want in 6 out 5 failed 1, rate_in 1/s rate_out 1/s (2 messages in 2s)", st)
	}
	if src := node(t, &snap, "src"); src.Out != 6 || src.Role != "source" {
		t.Fatalf("src = %+v, want out 6", src)
	}
	if !strings.Contains(body, `"dead_lettered":`) || !strings.Contains(body, `"queue_fill":`) || !strings.Contains(body, `"figures":[]`) {
		t.Fatalf("stats JSON lacks documented fields: %s", body)
	}

	code, body = get(t, h, "/api/v1/nodes/st/errors")
	if code != 200 || !strings.Contains(body, `"reason":"bad_input"`) {
		t.Fatalf("GET errors of st = %d %s, want the bad_input failure", code, body)
	}
	if code, _ = get(t, h, "/api/v1/nodes/nope/errors"); code != 404 {
		t.Fatalf("GET errors of an unknown node = %d, want 404", code)
	}
}

func TestTheStreamPushesEverySnapshotAsAnEvent(t *testing.T) {
	r := start(t)
	s := r.server(Options{})
	srv := httptest.NewServer(s.Handler(probes))
	defer srv.Close()
	defer s.Close()
	s.sample(time.Now())
	resp, err := http.Get(srv.URL + "/api/v1/stats/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type = %q, want text/event-stream", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	event := func() Snapshot {
		t.Helper()
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var snap Snapshot
				if err := json.Unmarshal([]byte(data), &snap); err != nil {
					t.Fatalf("event is not a snapshot: %v: %s", err, data)
				}
				return snap
			}
		}
		t.Fatalf("stream ended: %v", sc.Err())
		return Snapshot{}
	}
	if e := event(); e.Seq != 1 {
		t.Fatalf("first event seq = %d, want 1 (the latest snapshot)", e.Seq)
	}
	r.send("x")
	s.sample(time.Now())
	if e := event(); e.Seq != 2 || node(t, &e, "out").In != 1 {
		t.Fatalf("second event = seq %d, out %+v; want seq 2 with out.in 1", e.Seq, node(t, &e, "out"))
	}
}

func TestOnlyMetricsAndProbesAreServedPubliclyWithoutAToken(t *testing.T) {
	r := start(t)
	for _, tc := range []struct {
		name   string
		opts   Options
		target string
		header []string
		want   int
	}{
		{"public, no token: metrics", Options{Public: true}, "/metrics", nil, 200},
		{"public, no token: readyz", Options{Public: true}, "/readyz", nil, 200},
		{"public, no token: stats", Options{Public: true}, "/api/v1/stats", nil, 403},
		{"public, no token: page", Options{Public: true}, "/", nil, 403},
		{"public, no token: tap", Options{Public: true}, "/api/v1/tap/st", nil, 403},
		{"loopback, no token: stats", Options{}, "/api/v1/stats", nil, 200},
		{"token: none given", Options{Public: true, Token: "s3cret-tok"}, "/api/v1/stats", nil, 401},
		{"token: wrong", Options{Token: "s3cret-tok"}, "/api/v1/stats", []string{"Authorization", "Bearer nope"}, 401},
		{"token: bearer", Options{Public: true, Token: "s3cret-tok"}, "/api/v1/stats", []string{"Authorization", "Bearer s3cret-tok"}, 200},
		{"token: scheme in any case", Options{Public: true, Token: "s3cret-tok"}, "/api/v1/stats", []string{"Authorization", "bEaReR s3cret-tok"}, 200},
		{"token: query", Options{Public: true, Token: "s3cret-tok"}, "/api/v1/stats?token=s3cret-tok", nil, 200},
		{"token: metrics need none", Options{Public: true, Token: "s3cret-tok"}, "/metrics", nil, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := r.server(tc.opts).Handler(probes)
			if code, body := get(t, h, tc.target, tc.header...); code != tc.want {
				t.Fatalf("GET %s = %d %s, want %d", tc.target, code, body, tc.want)
			}
		})
	}
	h := r.server(Options{}).Handler(probes)
	req := httptest.NewRequest("POST", "/api/v1/stats", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST /api/v1/stats = %d, want 405: no endpoint changes the pipeline", rec.Code)
	}
}

func TestThePageIsSelfContainedAndDrawsEveryNode(t *testing.T) {
	r := start(t)
	code, body := get(t, r.server(Options{}).Handler(probes), "/")
	if code != 200 {
		t.Fatalf("GET / = %d", code)
	}
	for _, want := range []string{`id="node-src"`, `id="node-st"`, `id="node-out"`, `class="edge"`, `"workers: 2"`, "api/v1/stats/stream"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(strings.ReplaceAll(body, "http://www.w3.org/2000/svg", ""), "http") || strings.Contains(body, "<link") || strings.Contains(body, " src=") {
		t.Errorf("page loads something from elsewhere; it must work offline")
	}
	if len(body) > 300<<10 {
		t.Errorf("page is %d bytes, want at most 300 KiB", len(body))
	}
}
