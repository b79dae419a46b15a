package store

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"

	"github.com/pipe-dsl/pipe/internal/httpclient"
	"github.com/pipe-dsl/pipe/internal/lookup"
	"github.com/pipe-dsl/pipe/pipeline"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func unavailable(t *testing.T, what string, err error) {
	t.Helper()
	if os.Getenv("PIPE_REQUIRE_SERVICES") == "1" {
		t.Fatalf("%s is required (PIPE_REQUIRE_SERVICES=1): %v", what, err)
	}
	t.Skipf("%s is not reachable: %v (PIPE_REQUIRE_SERVICES=1 makes this a failure)", what, err)
}

const dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

func reqs(keys ...any) []lookup.Request {
	out := make([]lookup.Request, len(keys))
	for i, k := range keys {
		text, _ := KeyText(k)
		out[i] = lookup.Request{Key: text, Arg: k}
	}
	return out
}

func TestPostgresFetchesIntegerAndTextKeysInOneQuery(t *testing.T) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dsn)
	if err == nil {
		err = pool.Ping(ctx)
	}
	if err != nil {
		unavailable(t, "PostgreSQL at 127.0.0.1:5432", err)
	}
	defer pool.Close()
	table := fmt.Sprintf("lk_store_%d", time.Now().UnixNano())
	if _, err := pool.Exec(ctx, "CREATE TABLE "+table+" (id int, code text, big bigint); INSERT INTO "+table+" VALUES (1, 'a', 9007199254740993), (2, 'b', 0)"); err != nil {
		t.Fatal(err)
	}
	defer pool.Exec(ctx, "DROP TABLE "+table)

	byID, err := NewPostgres(dsn, "SELECT id, big FROM "+table+" WHERE id = ANY($1)", "id", 2, "t")
	if err != nil {
		t.Fatal(err)
	}
	defer byID.Close()
	got, err := byID.Fetch(ctx, reqs(int64(1), int64(3)))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || fmt.Sprint(got["1"]) != "map[big:9007199254740993 id:1]" {
		t.Fatalf("Fetch(1, 3) = %v, want only 1, its bigint exact", got)
	}
	byCode, err := NewPostgres(dsn, "SELECT code, id FROM "+table+" WHERE code = ANY($1)", "code", 2, "t")
	if err != nil {
		t.Fatal(err)
	}
	defer byCode.Close()
	if got, err := byCode.Fetch(ctx, reqs("a", "b", "z")); err != nil || len(got) != 2 {
		t.Fatalf("Fetch(a, b, z) = %v, %v; want a and b", got, err)
	}
	bad, err := NewPostgres(dsn, "SELECT nope FROM "+table+" WHERE id = ANY($1)", "nope", 1, "t")
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if _, err := bad.Fetch(ctx, reqs(int64(1))); err == nil || !pipeline.IsPermanent(err) {
		t.Fatalf("bad query: %v, want a permanent error", err)
	}
}

func TestPostgresBadDSNHidesIt(t *testing.T) {
	_, err := NewPostgres("postgres://u:pw-secret@host:notaport/db", "SELECT 1", "id", 1, "t")
	if !errors.Is(err, errBadDSN) {
		t.Fatalf("err = %v, want errBadDSN", err)
	}
}

func TestHTTPFetchesEachKeyAndFailsTheGroupOnAnError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/1":
			fmt.Fprint(w, `{"n": 1}`)
		case "/2":
			fmt.Fprint(w, `text`)
		case "/5":
			http.Error(w, "boom", http.StatusInternalServerError)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	h := NewHTTP(httpclient.New(httpclient.Config{MaxConns: 2}))
	defer h.Close()
	url := func(k string) lookup.Request { return lookup.Request{Key: k, Arg: srv.URL + "/" + k} }
	got, err := h.Fetch(context.Background(), []lookup.Request{url("1"), url("2"), url("3")})
	if err != nil || len(got) != 2 || fmt.Sprint(got["1"]) != "map[n:1]" || got["2"] != "text" {
		t.Fatalf("Fetch = %v, %v; want 1 decoded, 2 as text, 3 missing", got, err)
	}
	if _, err := h.Fetch(context.Background(), []lookup.Request{url("1"), url("5")}); err == nil {
		t.Fatal("a 500 in the group: no error")
	}
}

// Given a pooled connection the server killed, when the store is used
// again, then the dead connection is replaced (at most one call sees it)
// and the pool stays within max_conns.
func TestPostgresReplacesAKilledConnection(t *testing.T) {
	ctx := context.Background()
	admin, err := pgxpool.New(ctx, dsn)
	if err == nil {
		err = admin.Ping(ctx)
	}
	if err != nil {
		unavailable(t, "PostgreSQL at 127.0.0.1:5432", err)
	}
	defer admin.Close()
	app := fmt.Sprintf("lk_kill_%d", time.Now().UnixNano())
	st, err := NewPostgres(dsn, "SELECT id FROM (VALUES (1)) AS v(id) WHERE id = ANY($1)", "id", 2, app)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Fetch(ctx, reqs(int64(1))); err != nil {
		t.Fatal(err)
	}
	var killed int
	if err := admin.QueryRow(ctx, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1", app).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("killed %d connections (%v), want 1", killed, err)
	}
	failures := 0
	for range 3 {
		got, err := st.Fetch(ctx, reqs(int64(1)))
		if err != nil {
			failures++
			continue
		}
		if len(got) != 1 {
			t.Fatalf("Fetch = %v, want key 1", got)
		}
	}
	if failures > 1 {
		t.Fatalf("%d of 3 fetches failed after the kill, want at most 1", failures)
	}
	var open int
	if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", app).Scan(&open); err != nil || open < 1 || open > 2 {
		t.Fatalf("%d connections open (%v), want 1..2", open, err)
	}
}
