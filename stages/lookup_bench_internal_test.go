package stages

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/expr"
	"github.com/pipe-dsl/pipe/pipeline"
)

// BenchmarkLookupProcessHit is the per-message cost of a cache hit, beside
// the map stage rewriting the same body (the baseline of docs/lookup.md):
//
//	go test -run '^$' -bench 'ProcessHit|MapProcess' -count 6 ./stages/
func BenchmarkLookupProcessHit(b *testing.B) {
	results := map[string]any{}
	for i := range 10 {
		results[fmt.Sprint(i)] = map[string]any{"tier": "gold", "name": fmt.Sprint("c", i)}
	}
	benchProcess(b, stubLookup(b, "msg.customer_id", results))
}

// stubLookup returns a lookup stage keyed by key, setting into customer
// from results (see Stub), with a cache; the test closes it.
func stubLookup(tb testing.TB, key string, results map[string]any) *lookupStage {
	prog, err := expr.Compile(key)
	if err != nil {
		tb.Fatal(err)
	}
	c := lookupConfig{
		Redis: lookupRedis{URL: "redis://127.0.0.1:1/0", Command: "GET"},
		Key:   prog, Into: "customer", OnMissing: lookupMissing{Action: "keep"},
		Cache:    lookupCache{TTL: time.Hour, MaxEntries: 100},
		Coalesce: lookupCoalesce{MaxKeys: 1}, MaxConns: 1,
	}
	v, err := newLookup(&c, component.Env{Pipeline: "t", Node: "l", Clock: pipeline.SystemClock})
	if err != nil {
		tb.Fatal(err)
	}
	l := v.(*lookupStage)
	if err := l.Stub(results); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = l.Close(context.Background()) })
	return l
}

func BenchmarkMapProcess(b *testing.B) {
	prog, _ := expr.Compile("msg")
	benchProcess(b, &mapper{whole: prog})
}

func benchProcess(b *testing.B, p pipeline.Processor) {
	bodies := make([][]byte, 10)
	for i := range bodies {
		bodies[i] = fmt.Appendf(nil, `{"id":%d,"customer_id":%d,"cents":%d}`, i, i, i*7)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := p.Process(ctx, pipeline.NewMessage(bodies[i%10], nil)); err != nil {
			b.Fatal(err)
		}
	}
}
