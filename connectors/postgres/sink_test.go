package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/pipe-dsl/pipe/connectors/postgres"
	"github.com/pipe-dsl/pipe/dsl"
	"github.com/pipe-dsl/pipe/pipeline"
)

// run compiles and runs a pipeline file whose dead_letter sink, if any, is
// replaced by the returned recorder.
func run(t *testing.T, src string, env map[string]string) (*postgres.Recorder, error) {
	t.Helper()
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg, err := dsl.Parse("test.yaml", []byte(src), &dsl.Options{Lookup: lookup})
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	dead := postgres.NewRecorder()
	c, err := dsl.Compile(cfg, &dsl.CompileOptions{
		Options: dsl.Options{Lookup: lookup},
		Replace: func(n *dsl.Node) (any, bool) {
			if n == cfg.DeadLetter {
				return dead, true
			}
			return nil, false
		},
	})
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return dead, c.Run(context.Background())
}

func sinkPipeline(table, columns, extra string, count int) string {
	return fmt.Sprintf(`name: pgtest
source:
  generate:
    count: %d
    message: '{"id": seq, "name": "n" + string(seq), "tags": ["a", string(seq)]}'
sink:
  postgres:
    dsn: ${PG_DSN}
    table: %s
    columns: %s
%s
dead_letter:
  drop: {}
`, count, table, columns, extra)
}

func TestSinkRoundTripWritesEveryGeneratedRow(t *testing.T) {
	pool := postgres.OpenDB(t)
	tbl := postgres.MakeTable(t, pool, "id bigint PRIMARY KEY, name text NOT NULL, tags jsonb")
	const n = 500
	dead, err := run(t, sinkPipeline(tbl, "{id: msg.id, name: msg.name, tags: msg.tags}", "", n),
		map[string]string{"PG_DSN": postgres.DSN()})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(dead.Bodies()) != 0 {
		t.Fatalf("dead letters: %v", dead.Bodies())
	}
	got := postgres.QueryIDs(t, pool, "SELECT id FROM "+tbl+" ORDER BY id")
	if !slices.Equal(got, postgres.Seq(1, n)) {
		t.Fatalf("ids in table = %d rows (%v...), want 1..%d", len(got), got[:min(5, len(got))], n)
	}
	if c := postgres.QueryInt(t, pool, "SELECT count(*) FROM "+tbl+" WHERE name = 'n' || id AND tags = jsonb_build_array('a', id::text)"); c != n {
		t.Fatalf("rows with expected name and tags = %d, want %d", c, n)
	}
}

func TestSinkUpsertTwiceKeepsOneRowPerKey(t *testing.T) {
	pool := postgres.OpenDB(t)
	tbl := postgres.MakeTable(t, pool, "id bigint PRIMARY KEY, name text NOT NULL, runs int NOT NULL")
	const n = 200
	env := map[string]string{"PG_DSN": postgres.DSN()}
	for run1 := 1; run1 <= 2; run1++ {
		src := sinkPipeline(tbl, fmt.Sprintf("{id: msg.id, name: msg.name, runs: %d}", run1),
			"    on_conflict: [id]\n    update: [runs]", n)
		if _, err := run(t, src, env); err != nil {
			t.Fatalf("run %d: %v", run1, err)
		}
	}
	if c := postgres.QueryInt(t, pool, "SELECT count(*) FROM "+tbl); c != n {
		t.Fatalf("rows after two upsert runs = %d, want %d", c, n)
	}
	if c := postgres.QueryInt(t, pool, "SELECT count(*) FROM "+tbl+" WHERE runs = 2"); c != n {
		t.Fatalf("rows updated by the second run = %d, want %d", c, n)
	}
}

func TestSinkDeadLettersBadRowsAndKeepsGoodOnes(t *testing.T) {
	// Batched, the bad members of a batch are refused one by one and the
	// rest of their batch is written.
	for _, batch := range []string{"", "stages:\n  - batch: {size: 10, max_wait: 1s}\n"} {
		t.Run(fmt.Sprintf("batched=%v", batch != ""), func(t *testing.T) { deadLettersBadRows(t, batch) })
	}
}

func deadLettersBadRows(t *testing.T, stages string) {
	pool := postgres.OpenDB(t)
	// Every 7th id violates the CHECK; every 10th message has no "name".
	tbl := postgres.MakeTable(t, pool, "id bigint PRIMARY KEY CHECK (id % 7 <> 0), name text NOT NULL")
	const n = 140
	src := strings.Replace(sinkPipeline(tbl, "{id: msg.id, name: msg.name}", "", n),
		`"name": "n" + string(seq)`, `"name": seq % 10 == 0 ? dyn(null) : dyn("n" + string(seq))`, 1)
	// A null name fails the expression (no + for null and string).
	src = strings.Replace(src, "{id: msg.id, name: msg.name}", "\n      id: msg.id\n      name: 'msg.name + \"\"'", 1)
	src = strings.Replace(src, "sink:\n", stages+"sink:\n", 1)
	dead, err := run(t, src, map[string]string{"PG_DSN": postgres.DSN()})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	reasons := map[string]int{}
	for _, b := range dead.Bodies() {
		var d pipeline.DeadLetter
		if err := json.Unmarshal([]byte(b), &d); err != nil {
			t.Fatalf("dead letter %q: %v", b, err)
		}
		reasons[d.Reason]++
		if d.Reason == pipeline.ReasonSinkError && !strings.Contains(d.Error, "SQLSTATE 23514 (not retryable)") {
			t.Errorf("constraint dead letter error = %q, want SQLSTATE 23514 (not retryable)", d.Error)
		}
		if strings.Contains(d.Error, "postgres://") {
			t.Errorf("dead letter error shows the DSN: %q", d.Error)
		}
	}
	// ids 10..140 step 10 fail the expression (14); multiples of 7 that are
	// not multiples of 10 fail the CHECK: 20 multiples of 7, 2 of them (70, 140) counted above.
	want := map[string]int{pipeline.ReasonExpression: 14, pipeline.ReasonSinkError: 18}
	if fmt.Sprint(reasons) != fmt.Sprint(want) {
		t.Fatalf("dead-letter reasons = %v, want %v", reasons, want)
	}
	if c := postgres.QueryInt(t, pool, "SELECT count(*) FROM "+tbl); c != n-14-18 {
		t.Fatalf("rows = %d, want %d", c, n-14-18)
	}
}

func TestSinkConfigErrorsNeverShowTheDSN(t *testing.T) {
	const secret = "hunter2-secret"
	src := sinkPipeline("t", "{id: msg.id}", "", 1)
	lookup := func(k string) (string, bool) { return "postgres://u:" + secret + "@127.0.0.1:notaport/db", true }
	cfg, err := dsl.Parse("test.yaml", []byte(src), &dsl.Options{Lookup: lookup})
	if err == nil {
		_, err = dsl.Compile(cfg, &dsl.CompileOptions{Options: dsl.Options{Lookup: lookup}})
	}
	if err == nil {
		t.Fatal("Compile with a malformed DSN succeeded")
	}
	if strings.Contains(err.Error(), secret) {
		t.Fatalf("error shows the password: %v", err)
	}
}
