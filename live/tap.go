package live

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/pipe-dsl/pipe/pipeline"
)

// DefaultTapBuffer is how many messages a tap holds for its reader before
// it skips the next ones.
const DefaultTapBuffer = 256

// TapLine is one line of a tap's NDJSON stream.
type TapLine struct {
	Node string    `json:"node"`
	Port string    `json:"port,omitempty"`
	Time time.Time `json:"time"`
	// Body is the message body: as JSON when it is JSON, else as a string.
	Body json.RawMessage `json:"body,omitempty"`
	// Members are a batch's member bodies, as Body.
	Members []json.RawMessage `json:"members,omitempty"`
	// Meta is the message's metadata, with meta=1 only.
	Meta map[string]string `json:"meta,omitempty"`
	// Skipped counts the messages this tap skipped so far because its
	// reader was behind (its buffer was full).
	Skipped int64 `json:"skipped"`
}

// tap streams the messages leaving a node as NDJSON. Query: port (only
// that output port), n (stop after n lines), filter (a CEL condition on
// msg), meta=1 (include metadata). The node's goroutine only offers each
// message to a bounded buffer; filtering, redaction and writing happen
// here, so a slow reader costs the pipeline nothing but skips.
func (s *Server) tap(w http.ResponseWriter, r *http.Request) {
	node, q := r.PathValue("node"), r.URL.Query()
	limit := int64(-1)
	if v := q.Get("n"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			http.Error(w, "pipe: n: want a positive number, got "+quote(v), http.StatusBadRequest)
			return
		}
		limit = n
	}
	var keep func([]byte) (bool, error)
	if f := q.Get("filter"); f != "" {
		if s.opts.Filter == nil {
			http.Error(w, "pipe: filters are not supported here", http.StatusBadRequest)
			return
		}
		var err error
		if keep, err = s.opts.Filter(f); err != nil {
			http.Error(w, "pipe: filter: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	port, hasPort, withMeta := q.Get("port"), q.Has("port"), q.Get("meta") == "1"
	p, replaced := s.pipelineNow()
	buf := make(chan pipeline.Tapped, s.opts.TapBuffer)
	var skipped atomic.Int64
	detach, err := p.Tap(node, func(m pipeline.Tapped) {
		if hasPort && m.Port != port {
			return
		}
		select {
		case buf <- m:
		default:
			skipped.Add(1)
		}
	})
	if err != nil {
		http.Error(w, "pipe: "+err.Error(), http.StatusNotFound)
		return
	}
	defer detach()
	if s.onTap != nil {
		s.onTap()
	}
	fl, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if fl != nil {
		fl.Flush()
	}
	enc := json.NewEncoder(w)
	for limit != 0 {
		var m pipeline.Tapped
		select {
		case m = <-buf:
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		case <-replaced:
			return
		}
		if keep != nil && !filterTapped(&m, keep) {
			continue
		}
		line := TapLine{Node: node, Port: m.Port, Time: m.Created, Body: s.body(m.Body), Skipped: skipped.Load()}
		for _, b := range m.Members {
			line.Members = append(line.Members, s.body(b))
		}
		if withMeta && len(m.Meta) > 0 {
			line.Meta = make(map[string]string, len(m.Meta))
			for k, v := range m.Meta {
				line.Meta[k] = s.redact(v)
			}
		}
		if err := enc.Encode(line); err != nil {
			return
		}
		if fl != nil && len(buf) == 0 {
			fl.Flush()
		}
		limit--
	}
}

// body is b, redacted, as JSON: itself when it is valid JSON, else a string.
func (s *Server) body(b []byte) json.RawMessage {
	if b == nil {
		return nil
	}
	if s.opts.Redact != nil {
		b = []byte(s.opts.Redact(string(b)))
	}
	if json.Valid(b) {
		return b
	}
	q, _ := json.Marshal(string(b))
	return q
}

// filterTapped applies keep to m: to its body, or to each member of a
// batch, keeping the members that pass. It reports whether anything is
// left. A message the condition cannot evaluate is left out.
func filterTapped(m *pipeline.Tapped, keep func([]byte) (bool, error)) bool {
	if m.Members == nil {
		ok, err := keep(m.Body)
		return err == nil && ok
	}
	var kept [][]byte
	for _, b := range m.Members {
		if ok, err := keep(b); err == nil && ok {
			kept = append(kept, b)
		}
	}
	m.Members = kept
	return kept != nil
}
