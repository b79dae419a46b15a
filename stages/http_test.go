package stages_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/pipe-dsl/pipe/dsl"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

// usersServer answers GET /users?id=N with {"name": "user-N"}, 404 for id
// 3 and 503 for id 4. It echoes POST bodies under "echo".
func usersServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			b, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, `{"echo": %s, "auth": %q}`, b, r.Header.Get("Authorization"))
			return
		}
		switch id := r.URL.Query().Get("id"); id {
		case "3":
			http.Error(w, `{"error": "not found"}`, http.StatusNotFound)
		case "4":
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
		default:
			fmt.Fprintf(w, `{"name": "user-%s"}`, id)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// runStage compiles a pipeline of one http stage from YAML and runs bodies
// through it, returning what reached the sink and the dead letters.
func runStage(t *testing.T, stage string, bodies ...string) ([]string, []pipeline.DeadLetter) {
	t.Helper()
	src := fmt.Sprintf(`
name: t
source: {generate: {count: 1, message: '{}'}}
stages:
  - %s
sink: {stdout: {}}
dead_letter: {stdout: {}}
`, stage)
	cfg, err := dsl.Parse("t.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	out, dlq := &pipelinetest.Sink{}, &pipelinetest.Sink{}
	c, err := dsl.Compile(cfg, &dsl.CompileOptions{Replace: func(n *dsl.Node) (any, bool) {
		switch {
		case n.Role == pipeline.RoleSource:
			return pipelinetest.NewSource(bodies...), true
		case n == cfg.DeadLetter:
			return dlq, true
		case n.Role == pipeline.RoleSink:
			return out, true
		}
		return nil, false
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	var dls []pipeline.DeadLetter
	for _, b := range dlq.Bodies() {
		var dl pipeline.DeadLetter
		if err := json.Unmarshal([]byte(b), &dl); err != nil {
			t.Fatal(err)
		}
		dls = append(dls, dl)
	}
	got := out.Bodies()
	slices.Sort(got)
	slices.SortFunc(dls, func(a, b pipeline.DeadLetter) int { return strings.Compare(string(a.Payload), string(b.Payload)) })
	return got, dls
}

func TestHTTPStageMergesResponseAndDeadLettersFailures(t *testing.T) {
	srv := usersServer(t)
	got, dls := runStage(t, fmt.Sprintf(`{http: {url: "%s/users", query: {id: msg.id},
      merge: '{"id": msg.id, "name": response.name, "status": status}'}, workers: 4}`, srv.URL),
		`{"id":1}`, `{"id":2}`, `{"id":3}`, `{"id":4}`)

	want := []string{`{"id":1,"name":"user-1","status":200}`, `{"id":2,"name":"user-2","status":200}`}
	if !slices.Equal(got, want) {
		t.Errorf("sink got %q, want %q", got, want)
	}
	if len(dls) != 2 {
		t.Fatalf("dead letters = %+v, want 2", dls)
	}
	for i, w := range []struct{ payload, err string }{{`{"id":3}`, "http status 404"}, {`{"id":4}`, "http status 503"}} {
		dl := dls[i]
		if string(dl.Payload) != w.payload || dl.Stage != "http" || dl.Reason != pipeline.ReasonError || !strings.Contains(dl.Error, w.err) {
			t.Errorf("dead letter %d = payload %s stage %q reason %q error %q; want %s from stage http, reason error, error with %q",
				i, dl.Payload, dl.Stage, dl.Reason, dl.Error, w.payload, w.err)
		}
	}
}

func TestHTTPStageIntoSetsResponseFieldAndAcceptsListedStatus(t *testing.T) {
	srv := usersServer(t)
	got, dls := runStage(t, fmt.Sprintf(`{http: {url: "%s/users", query: {id: msg.id}, into: user.profile, accept: [404]}}`, srv.URL),
		`{"id":2}`, `{"id":3}`)
	want := []string{`{"id":2,"user":{"profile":{"name":"user-2"}}}`, `{"id":3,"user":{"profile":{"error":"not found"}}}`}
	if !slices.Equal(got, want) || len(dls) != 0 {
		t.Errorf("sink got %q, dead letters %+v; want %q and none", got, dls, want)
	}
}

func TestHTTPStagePostsBodyExpressionWithToken(t *testing.T) {
	srv := usersServer(t)
	t.Setenv("HTTP_STAGE_TOKEN", "tkn-1234")
	got, _ := runStage(t, fmt.Sprintf(`{http: {url: "%s/x", method: POST, token: "${HTTP_STAGE_TOKEN}", body: '{"ids": [msg.id]}'}}`, srv.URL),
		`{"id":5}`)
	want := []string{`{"auth":"Bearer tkn-1234","echo":{"ids":[5]}}`}
	if !slices.Equal(got, want) {
		t.Errorf("sink got %q, want %q", got, want)
	}
}

func TestHTTPStageMergeCannotReadResponseElsewhere(t *testing.T) {
	src := `
name: t
source: {generate: {count: 1, message: '{}'}}
stages:
  - map: '{"x": response}'
sink: {stdout: {}}
`
	cfg, err := dsl.Parse("t.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dsl.Compile(cfg, nil); err == nil || !strings.Contains(err.Error(), "undeclared reference to 'response'") {
		t.Errorf("Compile(map reading response) = %v, want undeclared reference", err)
	}
}

func TestHTTPStageErrorsAreClassifiedLikeTheSink(t *testing.T) {
	srv := usersServer(t)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer slow.Close()

	_, dls := runStage(t, fmt.Sprintf(`{http: {url: "%s/users", query: {id: msg.id}}}`, srv.URL), `{"id":4}`)
	if len(dls) != 1 || !strings.Contains(dls[0].Error, "503") {
		t.Fatalf("dead letters %+v, want one 503", dls)
	}
	_, dls = runStage(t, fmt.Sprintf(`{http: {url: "%s", timeout: 30ms}}`, slow.URL), `{"id":1}`)
	if len(dls) != 1 || dls[0].Reason != pipeline.ReasonTimeout {
		t.Fatalf("dead letters %+v, want one with reason timeout", dls)
	}
}
