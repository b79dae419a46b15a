package httpserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

// manyHeaders returns n junk headers and a traceparent, as header pairs.
func manyHeaders(n int) []string {
	h := []string{"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	for i := range n {
		h = append(h, fmt.Sprintf("X-H-%d", i), "v")
	}
	return h
}

// TestManyHeadersAndLinesShareOneSmallMetaMap: Given a request with 2,000
// headers and 5,000 NDJSON lines, then all its messages share one metadata
// map, and that map holds only the allow-listed header and the two http_*
// keys, not the 2,000 others.
func TestManyHeadersAndLinesShareOneSmallMetaMap(t *testing.T) {
	var (
		mu   sync.Mutex
		maps = map[uintptr]map[string]string{}
	)
	sink := &pipelinetest.Sink{Fail: func(m *pipeline.Message) error {
		mu.Lock()
		defer mu.Unlock()
		maps[reflect.ValueOf(m.Meta).Pointer()] = m.Meta
		return nil
	}}
	s := start(t, func(c *config) { c.Framing = "ndjson"; c.MaxBody = 1 << 20 }, opts{sink: sink})
	code, body := post(t, s.url, strings.Repeat("{}\n", 5000), manyHeaders(2000)...)
	if code != http.StatusOK {
		t.Fatalf("POST = %d %s, want 200", code, body)
	}
	if len(maps) != 1 {
		t.Fatalf("5,000 messages of one request hold %d metadata maps, want 1", len(maps))
	}
	for _, meta := range maps {
		if len(meta) != 3 || meta["traceparent"] == "" {
			t.Fatalf("meta has %d keys (%v...), want traceparent, http_path, http_remote_addr", len(meta), meta["x-h-1"])
		}
	}
}

// TestUnlistedHeadersStayOutOfDeadLetters: a header that is not in
// meta_headers does not reach the dead-letter envelope.
func TestUnlistedHeadersStayOutOfDeadLetters(t *testing.T) {
	sink := &pipelinetest.Sink{Fail: func(*pipeline.Message) error { return errors.New("down") }}
	dlq := &pipelinetest.Sink{}
	s := start(t, nil, opts{sink: sink, dlq: dlq})
	if code, _ := post(t, s.url, "{}", "X-Session-Secret", "abc123", "X-Request-Id", "r1"); code != http.StatusOK {
		t.Fatalf("POST = %d, want 200 once dead-lettered", code)
	}
	letters := dlq.Bodies()
	if len(letters) != 1 {
		t.Fatalf("dead letters = %d, want 1", len(letters))
	}
	var env struct{ Meta map[string]string }
	if err := json.Unmarshal([]byte(letters[0]), &env); err != nil {
		t.Fatal(err)
	}
	if env.Meta["x-request-id"] != "r1" || strings.Contains(letters[0], "abc123") {
		t.Fatalf("dead letter = %s, want x-request-id and no x-session-secret", letters[0])
	}
}

// TestHeaderMetaCostDoesNotGrowWithHeaders: building the metadata of a
// request costs the same few allocations with 2,000 headers as with none.
func TestHeaderMetaCostDoesNotGrowWithHeaders(t *testing.T) {
	cfg := defaults()
	cfg.Auth = "none"
	src, err := newSource(&cfg, component.Env{})
	must(t, err)
	s := src.(*source)
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	h := manyHeaders(2000)
	for i := 0; i < len(h); i += 2 {
		r.Header.Set(h[i], h[i+1])
	}
	if n := testing.AllocsPerRun(20, func() { s.headerMeta(r) }); n > 10 {
		t.Fatalf("headerMeta with 2,000 headers = %v allocations, want at most 10", n)
	}
}

func TestMetaHeadersRefusesCredentials(t *testing.T) {
	cfg := defaults()
	cfg.Auth, cfg.MetaHeaders = "none", []string{"traceparent", "authorization"}
	if _, err := newSource(&cfg, component.Env{}); err == nil || !strings.Contains(err.Error(), "Authorization") {
		t.Fatalf("newSource(meta_headers: [authorization]) = %v, want an error naming Authorization", err)
	}
}
