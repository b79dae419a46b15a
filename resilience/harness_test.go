package resilience

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

// postSink POSTs each message body to url: the test's stand-in for the
// http sink. A non-2xx answer is a *StatusError.
type postSink struct {
	url    string
	client *http.Client
}

func (s *postSink) Write(ctx context.Context, m *pipeline.Message) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(m.Body))
	if err != nil {
		return err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode/100 != 2 {
		return &StatusError{Code: resp.StatusCode}
	}
	return nil
}

// server is an httptest server whose answer to each request is chosen by
// decide; it accepts (200) when decide returns 0, and records accepted ids.
type server struct {
	*httptest.Server
	decide func(id int) int // status to answer, 0 to accept, -1 to drop the connection

	mu       sync.Mutex
	accepted map[int]int // id -> times accepted
	requests atomic.Int64
}

func newServer(t *testing.T, decide func(id int) int) *server {
	s := &server{decide: decide, accepted: map[int]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.handle))
	t.Cleanup(s.Close)
	return s
}

func (s *server) handle(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	var body struct{ ID int }
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	switch code := s.decide(body.ID); code {
	case 0:
		s.mu.Lock()
		s.accepted[body.ID]++
		s.mu.Unlock()
	case -1:
		c, _, _ := w.(http.Hijacker).Hijack()
		c.Close()
	default:
		w.WriteHeader(code)
	}
}

func (s *server) Accepted() map[int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[int]int, len(s.accepted))
	for k, v := range s.accepted {
		out[k] = v
	}
	return out
}

func (s *server) sink() *postSink {
	return &postSink{url: s.URL, client: s.Client()}
}

// idSource sends {"id": i} for i in [0, n) and records how each resolved.
// It stops early when ctx is cancelled.
type idSource struct {
	n int

	mu    sync.Mutex
	acked map[int]int
	nacks map[int]int
	sent  int
	// created counts messages made, sent or not.
	created int
	onAck   func(acked int)
	// sentTo, if set, receives the count after each accepted Send.
	sentTo chan int
}

func newIDSource(n int) *idSource {
	return &idSource{n: n, acked: map[int]int{}, nacks: map[int]int{}}
}

func (s *idSource) Read(ctx context.Context, out pipeline.Outlet) error {
	for i := range s.n {
		if ctx.Err() != nil {
			return nil
		}
		s.mu.Lock()
		s.created++
		s.mu.Unlock()
		m := pipeline.NewMessage([]byte(`{"id":`+strconv.Itoa(i)+`}`), func(err error) {
			s.mu.Lock()
			if err != nil {
				s.nacks[i]++
			} else {
				s.acked[i]++
			}
			acked, hook := len(s.acked), s.onAck
			s.mu.Unlock()
			if hook != nil && err == nil {
				hook(acked)
			}
		})
		if out.Send(ctx, m) != nil {
			return nil
		}
		s.mu.Lock()
		s.sent++
		sent := s.sent
		s.mu.Unlock()
		if s.sentTo != nil {
			s.sentTo <- sent
		}
	}
	return nil
}

func (s *idSource) Sent() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent
}

func (s *idSource) results() (acked, nacked map[int]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	acked, nacked = map[int]int{}, map[int]int{}
	for k, v := range s.acked {
		acked[k] = v
	}
	for k, v := range s.nacks {
		nacked[k] = v
	}
	return acked, nacked
}

// deadLetters decodes the envelopes a dead-letter recorder received, by id.
func deadLetters(t *testing.T, dlq *pipelinetest.Sink) map[int]pipeline.DeadLetter {
	t.Helper()
	out := map[int]pipeline.DeadLetter{}
	for _, b := range dlq.Bodies() {
		var d pipeline.DeadLetter
		if err := json.Unmarshal([]byte(b), &d); err != nil {
			t.Fatalf("dead letter %s: %v", b, err)
		}
		var body struct{ ID int }
		if err := json.Unmarshal(d.Payload, &body); err != nil {
			t.Fatalf("dead letter payload %s: %v", d.Payload, err)
		}
		if _, dup := out[body.ID]; dup {
			t.Errorf("message %d dead-lettered twice", body.ID)
		}
		out[body.ID] = d
	}
	return out
}

// autoAdvance moves clock to each timer as soon as one is armed, until the
// returned stop is called: for pipelines whose waits should pass at once
// but in order.
func autoAdvance(clock *pipelinetest.FakeClock) (stop func()) {
	var stopped atomic.Bool
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		for {
			clock.WaitTimers(1)
			if stopped.Load() {
				return
			}
			if d, ok := clock.Next(); ok {
				clock.Advance(d)
			}
		}
	}()
	return func() {
		stopped.Store(true)
		t := clock.NewTimer(time.Hour)
		<-exited
		t.Stop()
	}
}

// run builds a pipeline of src -> [stage] -> sink with a dead-letter
// recorder, runs it and returns the recorder.
func runPipeline(t *testing.T, ctx context.Context, clock pipeline.Clock, src pipeline.Source, sink pipeline.Sink, opts pipeline.NodeOptions, dlq pipeline.Sink) error {
	t.Helper()
	p := pipeline.New(t.Name())
	p.Clock, p.Logger = clock, quiet
	p.DrainTimeout = time.Minute
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(p.AddSource("src", "ids", src))
	must(p.AddSink("out", "post", sink, opts))
	must(p.Connect("src", "", "out"))
	if dlq != nil {
		must(p.SetDeadLetter("recorder", dlq, pipeline.NodeOptions{}))
	}
	return p.Run(ctx)
}
