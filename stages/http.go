package stages

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/expr"
	"github.com/pipe-dsl/pipe/internal/httpclient"
	"github.com/pipe-dsl/pipe/pipeline"
)

type httpStageConfig struct {
	URL      string                   `pipe:"url,required" desc:"Endpoint to call for each message (http or https)." example:"http://127.0.0.1:8089/users"`
	Method   string                   `pipe:"method" desc:"HTTP method." enum:"GET,POST,PUT,PATCH,DELETE" example:"POST"`
	Query    map[string]*expr.Program `pipe:"query" desc:"Query parameters added to url, each the value of a CEL expression over the message: a string as is, anything else as JSON." example:"{id: msg.user_id}"`
	Body     *expr.Program            `pipe:"body" desc:"CEL expression whose JSON value is the request body. Without it, POST, PUT and PATCH send the message body; GET and DELETE send none." example:"{\"ids\": [msg.user_id]}"`
	Headers  map[string]string        `pipe:"headers" desc:"Headers sent with every request. Do not put secrets here: use token." example:"{Accept: application/json}"`
	Token    string                   `pipe:"token,secret" desc:"Bearer token sent as the Authorization header, usually from the environment; never printed." example:"${API_TOKEN}"`
	Merge    *expr.Program            `pipe:"merge" vars:"response,status" desc:"CEL expression whose value becomes the new body. It reads msg, meta, response (the response body decoded from JSON; a string if it is not JSON, null if empty) and status. Without merge or into, the response replaces the body." example:"{\"id\": msg.id, \"user\": response.name}"`
	Into     string                   `pipe:"into" desc:"Field of the JSON object body to set to the decoded response, instead of merge; a dotted key reaches a nested field." example:"user"`
	Accept   []int                    `pipe:"accept" desc:"Statuses besides 2xx that are merged rather than failing, e.g. 404 for a lookup that may find nothing." example:"[404]"`
	MaxConns int                      `pipe:"max_conns" desc:"Most connections open to the host at once; more concurrent calls (workers) wait for one." example:"8" min:"1"`
	Timeout  time.Duration            `pipe:"timeout" desc:"Bounds one call, including reading the response; 0 means none." example:"2s" min:"0"`
	MaxBody  component.Size           `pipe:"max_response" desc:"Largest response body read; a larger one fails the message as invalid_payload." example:"1MiB" min:"1"`
}

func init() {
	component.Register(component.Stage("http",
		"Calls an HTTP endpoint for each message and merges the response into the body; non-2xx responses and transport errors fail the message, classified for retry like the http sink.",
		httpStageConfig{Method: "GET", MaxConns: 16, Timeout: 10 * time.Second, MaxBody: 16 << 20}, newHTTPStage,
		component.WithBatching(component.BatchesReject)))
}

// enricher calls url for each message and merges the response.
//
//	in  -- a ------- b -------
//	     [ GET url?q(a) -> r(a) ]
//	out -- m(a,r(a)) - m(b,r(b))
type enricher struct {
	cfg    httpStageConfig
	base   *url.URL
	query  []string // sorted keys of cfg.Query
	into   []string
	accept map[int]bool
	client *httpclient.Client
}

var (
	_ pipeline.Processor = (*enricher)(nil)
	_ pipeline.Closer    = (*enricher)(nil)
)

func newHTTPStage(c *httpStageConfig, env component.Env) (any, error) {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("url: want an absolute http:// or https:// URL")
	}
	if c.Merge != nil && c.Into != "" {
		return nil, errors.New("use either merge or into, not both")
	}
	e := &enricher{cfg: *c, base: u, query: slices.Sorted(maps.Keys(c.Query)), accept: map[int]bool{}}
	if c.Into != "" {
		e.into = strings.Split(c.Into, ".")
	}
	for _, s := range c.Accept {
		e.accept[s] = true
	}
	e.client = httpclient.New(httpclient.Config{
		MaxConns: c.MaxConns,
		Timeout:  c.Timeout,
		Headers:  c.Headers,
		Token:    c.Token,
		Hide:     env.EnvText,
		MaxBody:  int64(c.MaxBody),
		Now:      env.Clock.Now,
	})
	return e, nil
}

// Process calls the endpoint and merges its response. A non-2xx status not
// in accept fails m with a *httpclient.StatusError; see httpclient.Client.Do
// for the other errors.
func (e *enricher) Process(ctx context.Context, m *pipeline.Message) (*pipeline.Message, error) {
	if m.Batch() != nil {
		return nil, errBatch("http")
	}
	in := input(m)
	req := httpclient.Request{Method: e.cfg.Method, URL: e.cfg.URL, Trace: m.Context(), ContentType: "application/json", NeedBody: true}
	if len(e.query) > 0 {
		u, err := e.url(&in)
		if err != nil {
			return nil, err
		}
		req.URL = u
	}
	switch {
	case e.cfg.Body != nil:
		b, _, err := e.cfg.Body.EvalJSON(&in)
		if err != nil {
			return nil, evalError(fmt.Errorf("body: %w", err))
		}
		req.Body = b
	case e.cfg.Method == "POST" || e.cfg.Method == "PUT" || e.cfg.Method == "PATCH":
		req.Body = m.Body
	}
	status, body, err := e.client.Do(ctx, req)
	var se *httpclient.StatusError
	if err != nil && !(errors.As(err, &se) && e.accept[status]) {
		return nil, err
	}
	keepDecoded(m, &in)
	if err := e.merge(m, &in, status, body); err != nil {
		return nil, err
	}
	return m, nil
}

// url is the base URL with the query expressions' values added.
func (e *enricher) url(in *expr.Input) (string, error) {
	u := *e.base
	q := u.Query()
	for _, k := range e.query {
		v, err := e.cfg.Query[k].EvalNative(in)
		if err != nil {
			return "", evalError(fmt.Errorf("query %s: %w", k, err))
		}
		s, err := queryValue(v)
		if err != nil {
			return "", evalError(fmt.Errorf("query %s: %w", k, err))
		}
		q.Set(k, s)
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

func queryValue(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	}
	b, err := expr.EncodeJSON(v)
	return string(b), err
}

// merge sets m's body from the response.
func (e *enricher) merge(m *pipeline.Message, in *expr.Input, status int, body []byte) error {
	var resp any
	if len(body) > 0 {
		var err error
		if resp, err = expr.DecodeJSON(body); err != nil {
			resp = string(body)
		}
	}
	switch {
	case e.cfg.Merge != nil:
		in.Vars = map[string]any{"response": resp, "status": int64(status)}
		b, decoded, err := e.cfg.Merge.EvalJSON(in)
		if err != nil {
			return evalError(fmt.Errorf("merge: %w", err))
		}
		m.SetBody(b)
		m.SetDecoded(decoded)
	case e.into != nil:
		out, err := objectBody(m, in, "into "+e.cfg.Into, in.Decoded != nil)
		if err != nil {
			return err
		}
		if err := setPath(out, e.into, resp); err != nil {
			return pipeline.WithReason(pipeline.ReasonInvalidPayload, err)
		}
		b, err := expr.EncodeJSON(out)
		if err != nil {
			return evalError(err)
		}
		m.SetBody(b)
		m.SetDecoded(out)
	default:
		b, err := expr.EncodeJSON(resp)
		if err != nil {
			return pipeline.WithReason(pipeline.ReasonInvalidPayload, err)
		}
		m.SetBody(b)
		m.SetDecoded(resp)
	}
	return nil
}

// objectBody returns m's body, which must be a JSON object, as a map the
// caller may change: in.Decoded (copied if shared, as a decoded body other
// messages may hold is) or else the body decoded. what names the user in
// the error for any other body.
func objectBody(m *pipeline.Message, in *expr.Input, what string, shared bool) (map[string]any, error) {
	doc := in.Decoded
	if doc == nil {
		var err error
		if doc, err = expr.DecodeJSON(m.Body); err != nil {
			return nil, pipeline.WithReason(pipeline.ReasonInvalidPayload, err)
		}
		shared = false
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return nil, pipeline.WithReason(pipeline.ReasonInvalidPayload,
			fmt.Errorf("%s needs a JSON object body, got %s", what, jsonKind(doc)))
	}
	if shared {
		obj = maps.Clone(obj)
	}
	return obj, nil
}

func (e *enricher) Close(context.Context) error {
	e.client.CloseIdle()
	return nil
}
