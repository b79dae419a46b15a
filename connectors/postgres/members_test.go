package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/pipe-dsl/pipe/connectors/postgres"
	"github.com/pipe-dsl/pipe/dsl"
	"github.com/pipe-dsl/pipe/pipeline"
)

// Given a batch of 8 of which the real server refuses 4 (a CHECK), the
// sink's counts show the members: out 4, failed 4, dead-lettered 4, not a
// failed batch.
func TestAPartlyRefusedBatchCountsMembersInTheSinksStats(t *testing.T) {
	pool := postgres.OpenDB(t)
	tbl := postgres.MakeTable(t, pool, "id bigint PRIMARY KEY CHECK (id % 2 = 0)")
	src := strings.Replace(sinkPipeline(tbl, "{id: msg.id}", "", 8), "sink:\n", "stages:\n  - batch: {size: 8}\nsink:\n", 1)
	lookup := func(k string) (string, bool) { return postgres.DSN(), k == "PG_DSN" }
	cfg, err := dsl.Parse("test.yaml", []byte(src), &dsl.Options{Lookup: lookup})
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	c, err := dsl.Compile(cfg, &dsl.CompileOptions{Options: dsl.Options{Lookup: lookup}})
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	if err := c.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, s := range c.Stats() {
		if s.Role != pipeline.RoleSink {
			continue
		}
		if s.In != 1 || s.Out != 4 || s.Failed != 4 || s.DeadLettered != 4 {
			t.Errorf("sink in %d out %d failed %d dead-lettered %d, want 1 batch in, 4 out, 4 failed, 4 dead-lettered",
				s.In, s.Out, s.Failed, s.DeadLettered)
		}
	}
	if n := postgres.QueryInt(t, pool, "SELECT count(*) FROM "+tbl); n != 4 {
		t.Errorf("rows = %d, want 4", n)
	}
}
