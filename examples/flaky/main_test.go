package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestFlakyFailsFirstThenCountsMessages(t *testing.T) {
	srv := httptest.NewServer(newServer(2, 0, http.StatusServiceUnavailable, 1))
	defer srv.Close()
	bodies := []string{`{"id":1}`, `{"id":2}`, `{"id":3}`, `[{"id":4},{"id":5}]`, "{\"id\":6}\n{\"id\":7}\n"}
	var codes []int
	for _, b := range bodies {
		resp, err := http.Post(srv.URL+"/events", "application/json", strings.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
		if resp.StatusCode == 503 && resp.Header.Get("Retry-After") != "1" {
			t.Errorf("503 without Retry-After: 1")
		}
	}
	if want := []int{503, 503, 200, 200, 200}; !slices.Equal(codes, want) {
		t.Errorf("statuses = %v, want %v", codes, want)
	}
	resp, err := http.Get(srv.URL + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if want := (stats{Accepted: 3, Rejected: 2, Messages: 5}); st != want {
		t.Errorf("stats = %+v, want %+v", st, want)
	}
}
