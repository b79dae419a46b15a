package stages_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/pipeline"
)

func TestLookupPostgresSetsIntoAndAppliesEachOnMissingMode(t *testing.T) {
	pool := openPG(t)
	table, seq := customers(t, pool, 10)
	bodies := []string{`{"customer_id":2}`, `{"customer_id":99}`, `{"customer_id":3}`, `{"customer_id":null}`}
	for _, tc := range []struct {
		onMissing string
		out       []string
		reasons   []string
		dropped   bool
	}{
		{"keep", []string{`{"customer":{"id":2,"tier":"gold"},"customer_id":2}`, `{"customer_id":99}`, `{"customer":{"id":3,"tier":"silver"},"customer_id":3}`, `{"customer_id":null}`}, nil, false},
		{"drop", []string{`{"customer":{"id":2,"tier":"gold"},"customer_id":2}`, `{"customer":{"id":3,"tier":"silver"},"customer_id":3}`}, nil, true},
		{"dead_letter", []string{`{"customer":{"id":2,"tier":"gold"},"customer_id":2}`, `{"customer":{"id":3,"tier":"silver"},"customer_id":3}`}, []string{"lookup_missing", "lookup_missing"}, false},
		{`{default: '{"tier": "standard", "asked": key}'}`, []string{`{"customer":{"id":2,"tier":"gold"},"customer_id":2}`, `{"customer":{"asked":99,"tier":"standard"},"customer_id":99}`, `{"customer":{"id":3,"tier":"silver"},"customer_id":3}`, `{"customer":{"asked":null,"tier":"standard"},"customer_id":null}`}, nil, false},
	} {
		t.Run(tc.onMissing, func(t *testing.T) {
			r := runLookup(t, "lk_missing", fmt.Sprintf(`  - lookup:
      postgres: {dsn: %q, query: %q, key_column: id}
      key: msg.customer_id
      into: customer
      on_missing: %s`, pgDSN(), pgQuery(table, seq), tc.onMissing), bodies...)
			if !slices.Equal(r.out, tc.out) {
				t.Errorf("sink got\n%q\nwant\n%q", r.out, tc.out)
			}
			var reasons []string
			for _, dl := range r.dls {
				reasons = append(reasons, dl.Reason)
			}
			if !slices.Equal(reasons, tc.reasons) {
				t.Errorf("dead-letter reasons = %q, want %q (%+v)", reasons, tc.reasons, r.dls)
			}
		})
	}
}

func TestLookupPostgresMergesFieldsWithoutInto(t *testing.T) {
	pool := openPG(t)
	table, seq := customers(t, pool, 3)
	r := runLookup(t, "lk_merge", fmt.Sprintf(`  - lookup: {postgres: {dsn: %q, query: %q, key_column: id}, key: msg.customer_id}`,
		pgDSN(), pgQuery(table, seq)), `{"customer_id":1,"total":5}`)
	if want := []string{`{"customer_id":1,"id":1,"tier":"silver","total":5}`}; !slices.Equal(r.out, want) {
		t.Errorf("sink got %q, want %q", r.out, want)
	}
}

// Given 1,000 messages with one key and 64 workers, when they are looked
// up with a cache, then the server runs exactly one query.
func TestLookupPostgresThousandMessagesOneKeyMakeOneQuery(t *testing.T) {
	pool := openPG(t)
	table, seq := customers(t, pool, 10)
	r := runLookup(t, "lk_single", fmt.Sprintf(`  - lookup:
      postgres: {dsn: %q, query: %q, key_column: id}
      key: msg.customer_id
      into: customer
      cache: {ttl: 1h}
    workers: 64`, pgDSN(), pgQuery(table, seq)), orders(1000, func(int) int { return 7 })...)
	if len(r.out) != 1000 {
		t.Fatalf("sink got %d messages, want 1000", len(r.out))
	}
	if n := queries(t, pool, seq); n != 1 {
		t.Fatalf("server ran %d lookup queries, want 1", n)
	}
	if r.figures["round_trips"] != 1 || r.figures["cache_hits"]+r.figures["cache_misses"] != 1000 {
		t.Fatalf("figures = %v, want 1 round trip and 1000 hits+misses", r.figures)
	}
}

// Given coalescing of up to 10 keys and 10 workers, when 100 messages with
// distinct keys pass an ordered stage, then the server runs 10 queries of
// 10 keys and the messages leave in order.
func TestLookupPostgresCoalescesKeysIntoOneQueryPerGroupInOrder(t *testing.T) {
	pool := openPG(t)
	table, seq := customers(t, pool, 100)
	r := runLookup(t, "lk_coalesce", fmt.Sprintf(`  - lookup:
      postgres: {dsn: %q, query: %q, key_column: id}
      key: msg.customer_id
      into: customer
      coalesce: {max_keys: 10, max_wait: 1h}
    workers: 10
    ordered: true`, pgDSN(), pgQuery(table, seq)), orders(100, func(i int) int { return i + 1 })...)
	if len(r.out) != 100 {
		t.Fatalf("sink got %d messages, want 100", len(r.out))
	}
	for i, b := range r.out {
		if !strings.HasPrefix(b, fmt.Sprintf(`{"customer":{"id":%d,`, i+1)) {
			t.Fatalf("message %d = %s, want customer %d (order lost?)", i, b, i+1)
		}
	}
	if n := queries(t, pool, seq); n != 10 {
		t.Fatalf("server ran %d queries, want 10", n)
	}
	if r.figures["keys_per_round_trip"] != 10 {
		t.Fatalf("keys per round trip = %v, want 10", r.figures["keys_per_round_trip"])
	}
}

// Given max_conns 2 and 32 workers without coalescing, when 300 messages
// are looked up with a slow query, then pg_stat_activity never shows more
// than 2 connections of the stage, and none once the pipeline has ended.
func TestLookupPostgresNeverOpensMoreThanMaxConns(t *testing.T) {
	pool := openPG(t)
	table, _ := customers(t, pool, 300)
	app := "pipe/lk_pool/lookup"
	query := fmt.Sprintf("SELECT c.id, c.tier FROM %s c, (SELECT pg_sleep(0.002)) AS s WHERE c.id = ANY($1)", table)
	c, out, dlq := compileLookup(t, "lk_pool", fmt.Sprintf(`  - lookup:
      postgres: {dsn: %q, query: %q, key_column: id}
      key: msg.customer_id
      max_conns: 2
    workers: 32`, pgDSN(), query), nil, orders(300, func(i int) int { return i + 1 })...)
	count := func() int {
		return pgInt(t, pool, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", app)
	}
	stop := make(chan struct{})
	most := peak(count, stop)
	err := c.Run(t.Context())
	close(stop)
	if err != nil {
		t.Fatal(err)
	}
	r := collect(t, c, out, dlq)
	if len(r.out) != 300 {
		t.Fatalf("sink got %d, dead letters %+v; want 300", len(r.out), r.dls)
	}
	if m := most(); m > 2 || m == 0 {
		t.Fatalf("peak connections = %d, want 1..2", m)
	}
	// Close has sent each connection its Terminate; the server ends the
	// backends asynchronously, so wait (bounded) for them to go.
	deadline := time.Now().Add(5 * time.Second)
	for count() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections left 5s after the run, want 0", count())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Given a DSN with a password to a server that is down, when messages are
// looked up, then they are dead-lettered without the password anywhere.
func TestLookupPostgresDownStoreNeverShowsThePassword(t *testing.T) {
	const secret = "s3cret-pw-123"
	t.Setenv("LK_PG_DSN", "postgres://user:"+secret+"@127.0.0.1:1/db?connect_timeout=1")
	r := runLookup(t, "lk_secret", `  - lookup:
      postgres: {dsn: "${LK_PG_DSN}", query: "SELECT id FROM t WHERE id = ANY($1)", key_column: id}
      key: msg.customer_id`, `{"customer_id":1}`)
	if len(r.dls) != 1 {
		t.Fatalf("dead letters = %+v, want 1", r.dls)
	}
	b := fmt.Sprintf("%+v", r.dls[0])
	if strings.Contains(b, secret) {
		t.Fatalf("dead letter shows the password: %s", b)
	}
	if r.dls[0].Reason != pipeline.ReasonError || !strings.Contains(r.dls[0].Error, "postgres") {
		t.Fatalf("dead letter = %+v, want a postgres error", r.dls[0])
	}
}
