package httpclient

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		v    string
		want time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{" 0 ", 0},
		{"-5", 0},
		{"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
	} {
		if got := retryAfter(tc.v, now); got != tc.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tc.v, got, tc.want)
		}
	}
}

func TestSafeURLDropsCredentials(t *testing.T) {
	got := safeURL("https://user:pw@api.example.test:8443/v1/events?key=abc#frag")
	if want := "https://api.example.test:8443/v1/events"; got != want {
		t.Errorf("safeURL = %q, want %q", got, want)
	}
}

// A token straddling the snippet cut is redacted before cutting, so no
// prefix of it leaks.
func TestLongBodyIsRedactedThenCut(t *testing.T) {
	const token = "TOKEN-abcdefghijklmnop"
	body := strings.Repeat("x", 250) + token + strings.Repeat("y", 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, body, http.StatusBadGateway)
	}))
	defer srv.Close()
	c := New(Config{Token: token})
	defer c.CloseIdle()
	_, _, err := c.Do(context.Background(), Request{Method: "GET", URL: srv.URL})
	var se *StatusError
	if !errors.As(err, &se) {
		t.Fatalf("Do = %v, want a StatusError", err)
	}
	if strings.Contains(err.Error(), "TOKEN-") || len(se.Body) > 260 {
		t.Errorf("error %q: want the token redacted and the body cut", err)
	}
}

func TestRequestErrorHidesQuery(t *testing.T) {
	c := New(Config{})
	defer c.CloseIdle()
	_, _, err := c.Do(context.Background(), Request{Method: "GET", URL: "http://127.0.0.1:1/x?key=hunter2"})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Do = %v, want an error without the query", err)
	}
}

func TestLargeSuccessBodyFailsOnlyWhenNeeded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("z", 100)))
	}))
	defer srv.Close()
	c := New(Config{MaxBody: 10})
	defer c.CloseIdle()
	if _, _, err := c.Do(context.Background(), Request{Method: "POST", URL: srv.URL, Body: []byte(`{}`)}); err != nil {
		t.Errorf("Do without NeedBody = %v, want nil", err)
	}
	_, _, err := c.Do(context.Background(), Request{Method: "GET", URL: srv.URL, NeedBody: true})
	if err == nil || !strings.Contains(err.Error(), "larger than 10 bytes") {
		t.Errorf("Do with NeedBody = %v, want a too-large error", err)
	}
}
