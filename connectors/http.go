package connectors

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/internal/httpclient"
	"github.com/pipe-dsl/pipe/pipeline"
)

type httpSinkConfig struct {
	URL         string            `pipe:"url,required" desc:"Endpoint to send to (http or https)." example:"http://127.0.0.1:8089/events"`
	Method      string            `pipe:"method" desc:"HTTP method." enum:"POST,PUT" example:"PUT"`
	Headers     map[string]string `pipe:"headers" desc:"Headers sent with every request. Do not put secrets here: use token." example:"{X-Source: pipe}"`
	Token       string            `pipe:"token,secret" desc:"Bearer token sent as the Authorization header, usually from the environment; never printed." example:"${API_TOKEN}"`
	BatchFormat string            `pipe:"batch_format" desc:"How a batch is sent in one request: a JSON array of the member bodies, or newline-delimited JSON." enum:"array,ndjson" example:"ndjson"`
	MaxConns    int               `pipe:"max_conns" desc:"Most connections open to the host at once; more concurrent writes (workers) wait for one." example:"8" min:"1"`
	Timeout     time.Duration     `pipe:"timeout" desc:"Bounds one request, including reading the response; 0 means none." example:"5s" min:"0"`
}

func init() {
	component.Register(component.Sink("http",
		"Sends each message (or batch) as a JSON request body; 2xx is success, 408, 429 and 5xx are retryable failures, other statuses are not.",
		httpSinkConfig{Method: "POST", BatchFormat: "array", MaxConns: 16, Timeout: 10 * time.Second}, newHTTPSink))
}

// httpSink posts message bodies. A single message is sent as its body; a
// batch as one request whose body is a JSON array of the members, or their
// bodies one per line (ndjson).
type httpSink struct {
	cfg    httpSinkConfig
	client *httpclient.Client
}

var (
	_ pipeline.Sink   = (*httpSink)(nil)
	_ pipeline.Closer = (*httpSink)(nil)
)

func newHTTPSink(c *httpSinkConfig, env component.Env) (pipeline.Sink, error) {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("url: want an absolute http:// or https:// URL")
	}
	return &httpSink{cfg: *c, client: httpclient.New(httpclient.Config{
		MaxConns: c.MaxConns,
		Timeout:  c.Timeout,
		Headers:  c.Headers,
		Token:    c.Token,
		Hide:     env.EnvText,
		MaxBody:  64 << 10,
		Now:      env.Clock.Now,
	})}, nil
}

// Write sends m in one request. It returns a *httpclient.StatusError for a
// non-2xx response and a transport error otherwise (see httpclient.Client.Do).
func (s *httpSink) Write(ctx context.Context, m *pipeline.Message) error {
	body, ctype, err := s.encode(m)
	if err != nil {
		return err
	}
	_, _, err = s.client.Do(ctx, httpclient.Request{
		Method: s.cfg.Method, URL: s.cfg.URL, Body: body, ContentType: ctype, Trace: traceContext(m),
	})
	return err
}

func (s *httpSink) Close(context.Context) error {
	s.client.CloseIdle()
	return nil
}

func (s *httpSink) encode(m *pipeline.Message) ([]byte, string, error) {
	members := m.Batch()
	if members == nil {
		return m.Body, "application/json", nil
	}
	var buf bytes.Buffer
	if s.cfg.BatchFormat == "ndjson" {
		for _, x := range members {
			if bytes.ContainsAny(x.Body, "\r\n") {
				if err := json.Compact(&buf, x.Body); err != nil {
					return nil, "", invalidMember(err)
				}
			} else {
				buf.Write(x.Body)
			}
			buf.WriteByte('\n')
		}
		return buf.Bytes(), "application/x-ndjson", nil
	}
	buf.WriteByte('[')
	for i, x := range members {
		if !json.Valid(x.Body) {
			return nil, "", invalidMember(fmt.Errorf("member %d is not JSON", i))
		}
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(x.Body)
	}
	buf.WriteByte(']')
	return buf.Bytes(), "application/json", nil
}

func invalidMember(err error) error {
	return pipeline.WithReason(pipeline.ReasonInvalidPayload, fmt.Errorf("batch body: %w", err))
}

// traceContext is the context whose span a request carries: the message's,
// or for a batch, the first member's.
func traceContext(m *pipeline.Message) context.Context {
	if b := m.Batch(); len(b) > 0 && m.Context() == context.Background() {
		return b[0].Context()
	}
	return m.Context()
}
