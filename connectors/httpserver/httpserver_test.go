package httpserver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// server is an http_server source running in a pipeline.
type server struct {
	p      *pipeline.Pipeline
	src    *source
	url    string
	cancel context.CancelFunc
	done   chan error
	logs   *syncBuffer
}

type opts struct {
	sink, dlq *pipelinetest.Sink
	buffer    int
	connState func(net.Conn, http.ConnState)
}

func start(t *testing.T, edit func(*config), o opts) *server {
	t.Helper()
	cfg := defaults()
	cfg.Address, cfg.Auth = "127.0.0.1:0", "none"
	if edit != nil {
		edit(&cfg)
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := newSource(&cfg, component.Env{Pipeline: "t", Node: "in", Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if o.sink == nil {
		o.sink = &pipelinetest.Sink{}
	}
	p := pipeline.New("t")
	p.Logger = logger
	must(t, p.AddSource("in", "http_server", s))
	must(t, p.AddSink("out", "test", o.sink, pipeline.NodeOptions{Buffer: o.buffer}))
	must(t, p.Connect("in", "", "out"))
	if o.dlq != nil {
		must(t, p.SetDeadLetter("test", o.dlq, pipeline.NodeOptions{}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.(*source).connState = o.connState
	srv := &server{p: p, src: s.(*source), cancel: cancel, done: make(chan error, 1), logs: logs}
	go func() { srv.done <- p.Run(ctx) }()
	select {
	case <-srv.src.ready:
	case err := <-srv.done:
		t.Fatalf("Run returned before listening: %v", err)
	}
	srv.url = "http://" + srv.src.addr.String()
	t.Cleanup(func() {
		cancel()
		if err := <-srv.done; err != nil {
			t.Errorf("Run = %v", err)
		}
		http.DefaultClient.CloseIdleConnections()
	})
	return srv
}

// stats returns the current figures of node name.
func (s *server) stats(name string) pipeline.NodeStats {
	for _, n := range s.p.Stats() {
		if n.Name == name {
			return n
		}
	}
	panic("no node " + name)
}

// waitFor polls cond, which watches state the test cannot wait on through
// a channel, such as a pipeline counter; it fails after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s for %s", what)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func post(t *testing.T, url, body string, header ...string) (int, string) {
	t.Helper()
	code, b, err := send(url, body, header...)
	must(t, err)
	return code, b
}

// send POSTs body; it is safe to call from any goroutine.
func send(url, body string, header ...string) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func TestAnswers200OnlyAfterTheSinkAcked(t *testing.T) {
	sink := &pipelinetest.Sink{Gate: make(chan struct{}), Entered: make(chan struct{}, 1)}
	s := start(t, nil, opts{sink: sink})
	type answer struct {
		code int
		body string
	}
	got := make(chan answer, 1)
	go func() {
		code, body, err := send(s.url, `{"id":1}`)
		if err != nil {
			body = err.Error()
		}
		got <- answer{code, body}
	}()
	<-sink.Entered
	select {
	case a := <-got:
		t.Fatalf("answered %d before the sink finished", a.code)
	default:
	}
	sink.Gate <- struct{}{}
	a := <-got
	if a.code != http.StatusOK || !strings.Contains(a.body, `"accepted":1`) {
		t.Fatalf("POST = %d %q, want 200 accepted 1", a.code, a.body)
	}
	if got, want := sink.Bodies(), []string{`{"id":1}`}; !slices.Equal(got, want) {
		t.Fatalf("sink got %q, want %q", got, want)
	}
}

func TestHeadersBecomeMetadataWithoutCredentials(t *testing.T) {
	metas := make(chan map[string]string, 1)
	sink := &pipelinetest.Sink{Fail: func(m *pipeline.Message) error { metas <- m.Meta; return nil }}
	s := start(t, func(c *config) {
		c.Auth, c.Token = "bearer", "s3cret-token"
		c.MetaHeaders = append(c.MetaHeaders, "x-tenant")
	}, opts{sink: sink})
	tp := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	if code, _ := post(t, s.url, "x", "Authorization", "Bearer s3cret-token", "traceparent", tp, "X-Tenant", "acme", "X-Other", "no"); code != http.StatusOK {
		t.Fatalf("POST = %d, want 200", code)
	}
	meta := <-metas
	if meta["traceparent"] != tp || meta["x-tenant"] != "acme" {
		t.Errorf("meta = %v, want traceparent and x-tenant", meta)
	}
	for _, k := range []string{"authorization", "content-length", "x-other"} {
		if _, ok := meta[k]; ok {
			t.Errorf("meta holds the %s header: %v", k, meta)
		}
	}
}

func TestNDJSONBodyIsOneMessagePerLine(t *testing.T) {
	sink := &pipelinetest.Sink{}
	s := start(t, func(c *config) { c.Framing = "ndjson" }, opts{sink: sink})
	code, body := post(t, s.url, "{\"a\":1}\r\n\n  \n{\"a\":2}\n{\"a\":3}")
	if code != http.StatusOK || !strings.Contains(body, `"accepted":3`) {
		t.Fatalf("POST = %d %q, want 200 accepted 3", code, body)
	}
	if got, want := sink.Bodies(), []string{`{"a":1}`, `{"a":2}`, `{"a":3}`}; !slices.Equal(got, want) {
		t.Fatalf("sink got %q, want %q", got, want)
	}
}

func TestOversizedBodyIs413(t *testing.T) {
	sink := &pipelinetest.Sink{}
	s := start(t, func(c *config) { c.MaxBody = 16 }, opts{sink: sink})
	if code, _ := post(t, s.url, strings.Repeat("x", 17)); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("POST 17 bytes = %d, want 413", code)
	}
	if code, _ := post(t, s.url, strings.Repeat("x", 16)); code != http.StatusOK {
		t.Fatalf("POST 16 bytes = %d, want 200", code)
	}
	if n := len(sink.Bodies()); n != 1 {
		t.Fatalf("sink got %d messages, want 1", n)
	}
}

func TestTokenIsRequiredAndNeverLogged(t *testing.T) {
	const token = "tok-9f8e7d6c5b4a"
	sink := &pipelinetest.Sink{Fail: func(*pipeline.Message) error { return errors.New("sink down") }}
	s := start(t, func(c *config) { c.Auth, c.Token = "bearer", token }, opts{sink: sink})
	for _, h := range [][]string{nil, {"Authorization", "Bearer wrong"}, {"Authorization", token}} {
		if code, _ := post(t, s.url, "x", h...); code != http.StatusUnauthorized {
			t.Errorf("POST with %q = %d, want 401", h, code)
		}
	}
	// An authorized request whose delivery fails is logged: without the token.
	if code, _ := post(t, s.url, "x", "Authorization", "Bearer "+token); code != http.StatusInternalServerError {
		t.Errorf("POST with token to a failing sink = %d, want 500", code)
	}
	s.cancel()
	<-s.done
	s.done <- nil
	if strings.Contains(s.logs.String(), token) {
		t.Fatalf("token appears in logs:\n%s", s.logs.String())
	}
	if !strings.Contains(s.logs.String(), "sink down") {
		t.Fatalf("logs lack the failure, so the check above proves nothing:\n%s", s.logs.String())
	}
}

func TestDeadLetteredMessageIsAccepted(t *testing.T) {
	sink := &pipelinetest.Sink{Fail: func(*pipeline.Message) error { return errors.New("poison") }}
	dlq := &pipelinetest.Sink{}
	s := start(t, nil, opts{sink: sink, dlq: dlq})
	if code, _ := post(t, s.url, "bad"); code != http.StatusOK {
		t.Fatalf("POST = %d, want 200 once dead-lettered", code)
	}
	if n := len(dlq.Bodies()); n != 1 {
		t.Fatalf("dead letters = %d, want 1", n)
	}
}

func TestBackpressureIs429(t *testing.T) {
	sink := &pipelinetest.Sink{Gate: make(chan struct{}), Entered: make(chan struct{}, 4)}
	s := start(t, func(c *config) { c.AcceptTimeout = 50 * time.Millisecond }, opts{sink: sink, buffer: 1})
	codes := make(chan int, 3)
	postAsync := func(body string) {
		go func() {
			code, _, err := send(s.url, body)
			if err != nil {
				t.Error(err)
			}
			codes <- code
		}()
	}
	postAsync("1")
	<-sink.Entered // the sink holds message 1 until the gate opens
	// The sink's buffer has room for one of these two; the other waits
	// accept_timeout and is turned away.
	postAsync("2")
	postAsync("3")
	if c := <-codes; c != http.StatusTooManyRequests {
		t.Fatalf("first answer while the pipeline is full = %d, want 429", c)
	}
	close(sink.Gate)
	for range 2 {
		if c := <-codes; c != http.StatusOK {
			t.Errorf("accepted POST = %d, want 200", c)
		}
	}
	if n := len(sink.Bodies()); n != 2 {
		t.Errorf("sink got %d messages, want 2", n)
	}
}

func TestDrainingAnswers503(t *testing.T) {
	active := make(chan struct{})
	var once sync.Once
	s := start(t, func(*config) {}, opts{connState: func(_ net.Conn, st http.ConnState) {
		if st == http.StateActive {
			once.Do(func() { close(active) })
		}
	}})
	conn, err := net.Dial("tcp", s.src.addr.String())
	must(t, err)
	defer conn.Close()
	// The request is under way before the stop, so Shutdown leaves it be;
	// its body arrives after.
	_, err = io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n")
	must(t, err)
	<-active
	s.cancel()
	<-s.src.draining
	_, err = io.WriteString(conn, "x")
	must(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("POST while draining = %d, want 503", resp.StatusCode)
	}
}

func TestSlowHeadersAreCutOff(t *testing.T) {
	s := start(t, func(c *config) { c.ReadHeaderTimeout = 100 * time.Millisecond }, opts{})
	conn, err := net.Dial("tcp", s.src.addr.String())
	must(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
	must(t, err)
	// A safety net only: the server must hang up long before it.
	must(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	start := time.Now()
	_, err = io.ReadAll(conn)
	if err != nil {
		t.Fatalf("reading from a slowloris connection: %v (want the server to close it)", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("server closed the connection after %v, want about 100ms", d)
	}
}

func TestOnlyPostOnThePath(t *testing.T) {
	s := start(t, func(c *config) { c.Path = "/in" }, opts{})
	resp, err := http.Get(s.url + "/in")
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET = %d, want 405", resp.StatusCode)
	}
	if code, _ := post(t, s.url+"/other", "x"); code != http.StatusNotFound {
		t.Errorf("POST /other = %d, want 404", code)
	}
	if code, _ := post(t, s.url+"/in/sub", "x"); code != http.StatusNotFound {
		t.Errorf("POST /in/sub = %d, want 404", code)
	}
	if code, _ := post(t, s.url+"/in", ""); code != http.StatusBadRequest {
		t.Errorf("POST empty = %d, want 400", code)
	}
}

func TestPathEndingInSlashAcceptsSubpaths(t *testing.T) {
	s := start(t, func(c *config) { c.Path = "/hooks/" }, opts{})
	if code, _ := post(t, s.url+"/hooks/github", "x"); code != http.StatusOK {
		t.Errorf("POST /hooks/github = %d, want 200", code)
	}
	if code, _ := post(t, s.url+"/other", "x"); code != http.StatusNotFound {
		t.Errorf("POST /other = %d, want 404", code)
	}
	if _, err := newSource(&config{Path: "hooks", Auth: "none"}, component.Env{}); err == nil {
		t.Error("newSource(path: hooks) = nil error, want one")
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// refusing is an Outlet whose pipeline is at its hard stop: Send nacks.
type refusing struct{}

func (refusing) Send(_ context.Context, m *pipeline.Message) error {
	m.Nack(context.Canceled)
	return context.Canceled
}
func (r refusing) SendTo(ctx context.Context, _ string, m *pipeline.Message) error {
	return r.Send(ctx, m)
}
func (refusing) Fail(context.Context, *pipeline.Message, error) {}
func (refusing) Drop(*pipeline.Message, string)                 {}

func TestHardStopAnswers503AndEndsRead(t *testing.T) {
	cfg := defaults()
	cfg.Address, cfg.Auth = "127.0.0.1:0", "none"
	s, err := newSource(&cfg, component.Env{Logger: slog.New(slog.DiscardHandler)})
	must(t, err)
	src := s.(*source)
	done := make(chan error, 1)
	go func() { done <- src.Read(context.Background(), refusing{}) }()
	<-src.ready
	code, _, err := send("http://"+src.addr.String(), "x")
	must(t, err)
	http.DefaultClient.CloseIdleConnections()
	if code != http.StatusServiceUnavailable {
		t.Errorf("POST at the hard stop = %d, want 503", code)
	}
	if err := <-done; err != nil {
		t.Fatalf("Read = %v, want nil", err)
	}
}
