// Package httpclient sends the requests of the http sink and the http stage
// over a bounded connection pool, with W3C trace context, and classifies
// failures for retry.
package httpclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/pipe-dsl/pipe/pipeline"
)

// Config configures a Client.
type Config struct {
	// MaxConns bounds the connections open to one host; zero means 16.
	MaxConns int
	// Timeout bounds one request, from sending to the end of the response
	// body; zero means none.
	Timeout time.Duration
	// Headers are sent with every request.
	Headers map[string]string
	// Token, if set, is sent as "Authorization: Bearer <token>". It never
	// appears in errors: a response body that echoes it is redacted.
	Token string
	// Hide lists further texts that never appear in errors, such as the
	// parts of a URL that came from the environment (a webhook's secret
	// path): wherever an error would show one, in the URL, a transport
	// error or a response body, it shows [redacted].
	Hide []string
	// MaxBody bounds the response body read; zero means 16 MiB.
	MaxBody int64
	// Now gives the time Retry-After dates are measured from; nil means
	// time.Now.
	Now func() time.Time
}

// Client sends requests. It is safe for concurrent use.
type Client struct {
	hc      *http.Client
	tr      *http.Transport
	headers http.Header
	token   string
	// hide replaces the token and Config.Hide texts; nil when there are none.
	hide    *strings.Replacer
	timeout time.Duration
	maxBody int64
	now     func() time.Time
}

// New returns a Client. It opens no connection.
func New(c Config) *Client {
	n := c.MaxConns
	if n <= 0 {
		n = 16
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          n,
		MaxIdleConnsPerHost:   n,
		MaxConnsPerHost:       n,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	h := http.Header{}
	for k, v := range c.Headers {
		h.Set(k, v)
	}
	cl := &Client{
		hc:      &http.Client{Transport: tr},
		tr:      tr,
		headers: h,
		token:   c.Token,
		timeout: c.Timeout,
		maxBody: c.MaxBody,
		now:     c.Now,
	}
	var pairs []string
	for _, h := range append([]string{c.Token}, c.Hide...) {
		if h != "" {
			pairs = append(pairs, h, "[redacted]")
		}
	}
	if len(pairs) > 0 {
		cl.hide = strings.NewReplacer(pairs...)
	}
	if cl.maxBody <= 0 {
		cl.maxBody = 16 << 20
	}
	if cl.now == nil {
		cl.now = time.Now
	}
	return cl
}

// Request is one call.
type Request struct {
	Method, URL string
	// Body is sent with ContentType; nil sends no body.
	Body        []byte
	ContentType string
	// Trace is the context whose span is injected as traceparent and
	// tracestate headers, usually the message's.
	Trace context.Context
	// NeedBody makes a 2xx response body longer than Config.MaxBody an
	// error; otherwise the body is cut there.
	NeedBody bool
}

// Do sends r and returns the response status and body.
//
// A 2xx status returns err == nil. Any other status returns the status, the
// body and a *StatusError. A transport failure returns status 0 and an error
// wrapping the net error; one caused by the timeout also wraps
// context.DeadlineExceeded and carries the dead-letter reason timeout.
// Errors name the URL without its query, which may hold credentials.
func (c *Client) Do(ctx context.Context, r Request) (status int, body []byte, err error) {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	var rd io.Reader
	if r.Body != nil {
		rd = bytes.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, r.URL, rd)
	if err != nil {
		return 0, nil, c.hideErr(fmt.Errorf("%s %s: %w", r.Method, c.safeURL(r.URL), unwrapURL(err)))
	}
	for k, v := range c.headers {
		req.Header[k] = v
	}
	if r.Body != nil && r.ContentType != "" && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", r.ContentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if r.Trace != nil {
		otel.GetTextMapPropagator().Inject(r.Trace, propagation.HeaderCarrier(req.Header))
	}
	resp, err := c.hc.Do(req)
	if err == nil {
		body, err = io.ReadAll(io.LimitReader(resp.Body, c.maxBody+1))
		resp.Body.Close()
		if err == nil && int64(len(body)) > c.maxBody {
			if r.NeedBody && resp.StatusCode/100 == 2 {
				return resp.StatusCode, nil, pipeline.WithReason(pipeline.ReasonInvalidPayload,
					fmt.Errorf("%s %s: response body larger than %d bytes", r.Method, c.safeURL(r.URL), c.maxBody))
			}
			body = body[:c.maxBody]
		}
	}
	if err != nil {
		err = c.hideErr(fmt.Errorf("%s %s: %w", r.Method, c.safeURL(r.URL), unwrapURL(err)))
		if errors.Is(err, context.DeadlineExceeded) {
			err = pipeline.WithReason(pipeline.ReasonTimeout, err)
		}
		return 0, nil, err
	}
	if resp.StatusCode/100 == 2 {
		return resp.StatusCode, body, nil
	}
	return resp.StatusCode, body, &StatusError{
		Code:       resp.StatusCode,
		Body:       snippet(c.redact(string(body))),
		RetryAfter: retryAfter(resp.Header.Get("Retry-After"), c.now()),
	}
}

// CloseIdle closes the idle connections of the pool.
func (c *Client) CloseIdle() { c.tr.CloseIdleConnections() }

// redact hides the token and the Config.Hide texts in s.
func (c *Client) redact(s string) string {
	if c.hide == nil {
		return s
	}
	return c.hide.Replace(s)
}

// safeURL is u without user info, query and fragment, with the Hide texts
// redacted.
func (c *Client) safeURL(u string) string { return c.redact(safeURL(u)) }

// hideErr returns err, or, if its text shows a hidden text, an error with
// that text redacted that still wraps err for errors.Is and As.
func (c *Client) hideErr(err error) error {
	msg := err.Error()
	if r := c.redact(msg); r != msg {
		return &redactedError{msg: r, err: err}
	}
	return err
}

// redactedError is err with a redacted text.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// unwrapURL drops the *url.Error around err, whose text holds the full URL.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// safeURL is u without user info, query and fragment.
func safeURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(invalid url)"
	}
	p.User, p.RawQuery, p.ForceQuery, p.Fragment, p.RawFragment = nil, "", false, "", ""
	return p.String()
}

// snippet is the start of a response body for an error message.
func snippet(s string) string {
	const n = 256
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "") + "..."
	}
	return s
}

// retryAfter parses a Retry-After value, delay-seconds or an HTTP date,
// into a delay from now; zero when absent or unparsable.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		return max(time.Duration(s)*time.Second, 0)
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}
