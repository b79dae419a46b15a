package httpclient

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
)

// TestHiddenTextsStayOutOfTransportErrors: a URL path part listed in Hide
// is redacted in a transport error, which still wraps the net error.
func TestHiddenTextsStayOutOfTransportErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: the request is refused
	const secret = "B000-hook-SECRET"
	c := New(Config{Hide: []string{secret}})
	defer c.CloseIdle()
	_, _, err = c.Do(context.Background(), Request{Method: "POST", URL: "http://" + addr + "/services/T000/" + secret})
	if err == nil {
		t.Fatal("Do to a closed port = nil error")
	}
	if strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "/services/T000/[redacted]") {
		t.Errorf("error = %q, want the URL with [redacted] in place of the secret", err)
	}
	if _, ok := errors.AsType[*net.OpError](err); !ok {
		t.Errorf("error %q does not wrap the *net.OpError any more", err)
	}
}
