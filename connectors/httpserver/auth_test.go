package httpserver

import (
	"net/http"
	"strings"
	"testing"

	"github.com/pipe-dsl/pipe/component"
)

func TestAuthMustBeSaid(t *testing.T) {
	for _, tc := range []struct {
		auth, token string
		err         string // substring; "" for none
	}{
		{"bearer", "", "token is empty"},
		{"none", "tok", "auth is none"},
		{"none", "", ""},
		{"bearer", "tok", ""},
	} {
		cfg := defaults()
		cfg.Auth, cfg.Token = tc.auth, tc.token
		_, err := newSource(&cfg, component.Env{})
		if (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("newSource(auth: %s, token: %q) = %v, want error %q", tc.auth, tc.token, err, tc.err)
		}
	}
}

func TestBearerSchemeIsCaseInsensitive(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   bool
	}{
		{"Bearer tok", true},
		{"bearer tok", true},
		{"BEARER tok", true},
		{"Bearer  tok", true},
		{"Basic tok", false},
		{"Bearer", false},
		{"Bearer tok2", false},
		{"tok", false},
		{"", false},
	} {
		if got := validToken(tc.header, "tok"); got != tc.want {
			t.Errorf("validToken(%q, tok) = %v, want %v", tc.header, got, tc.want)
		}
	}
	if validToken("Bearer ", "") {
		t.Error(`validToken("Bearer ", "") = true: an empty token must match nothing`)
	}
}

func TestAuthNoneAcceptsWithoutHeader(t *testing.T) {
	s := start(t, nil, opts{}) // start says auth: none
	if code, _ := post(t, s.url, "x"); code != http.StatusOK {
		t.Fatalf("POST with auth: none = %d, want 200", code)
	}
}
