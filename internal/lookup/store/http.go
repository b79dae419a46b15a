package store

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/pipe-dsl/pipe/internal/httpclient"
	"github.com/pipe-dsl/pipe/internal/lookup"
)

// HTTP GETs one URL per key (Request.Arg), a group's requests in parallel
// over a pool of at most max_conns connections. 404 means missing; a 2xx
// body is decoded from JSON (a string if it is not JSON); any other status
// or a transport error fails the group.
type HTTP struct {
	client *httpclient.Client
}

var _ lookup.Store = (*HTTP)(nil)

// NewHTTP returns a store over client.
func NewHTTP(client *httpclient.Client) *HTTP { return &HTTP{client: client} }

func (h *HTTP) Fetch(ctx context.Context, reqs []lookup.Request) (map[string]any, error) {
	type answer struct {
		val   any
		found bool
		err   error
	}
	answers := make([]answer, len(reqs))
	var wg sync.WaitGroup
	for i, r := range reqs {
		wg.Go(func() {
			u, ok := r.Arg.(string)
			if !ok {
				answers[i].err = fmt.Errorf("http: url is %T, not a string", r.Arg)
				return
			}
			status, body, err := h.client.Do(ctx, httpclient.Request{Method: http.MethodGet, URL: u, Trace: r.Trace, NeedBody: true})
			var se *httpclient.StatusError
			switch {
			case status == http.StatusNotFound && errors.As(err, &se):
			case err != nil:
				answers[i].err = err
			default:
				answers[i] = answer{val: decode(string(body)), found: true}
			}
		})
	}
	wg.Wait()
	out := make(map[string]any, len(reqs))
	for i, a := range answers {
		if a.err != nil {
			return nil, a.err
		}
		if a.found {
			out[reqs[i].Key] = a.val
		}
	}
	return out, nil
}

// Close closes the idle connections.
func (h *HTTP) Close() error {
	h.client.CloseIdle()
	return nil
}
