package stages

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/expr"
	"github.com/pipe-dsl/pipe/internal/servicetest"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/state/redisstate"
)

// globalDedupeOnRedis builds a scope: global dedupe on the real Redis with
// a prefix unique to the test.
func globalDedupeOnRedis(t *testing.T) *globalDedupe {
	t.Helper()
	rdb := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"})
	t.Cleanup(func() { rdb.Close() })
	if err := rdb.Ping(t.Context()).Err(); err != nil {
		servicetest.Unavailable(t, "Redis on 127.0.0.1:6379", err)
	}
	prefix := fmt.Sprintf("pipe-test:%d:", time.Now().UnixNano())
	t.Cleanup(func() {
		if keys, _ := rdb.Keys(context.Background(), prefix+"*").Result(); len(keys) > 0 {
			rdb.Del(context.Background(), keys...)
		}
	})
	key, err := expr.Compile("msg.id")
	if err != nil {
		t.Fatal(err)
	}
	v, err := newDedupe(&dedupeConfig{Key: key, TTL: time.Hour, MaxKeys: 1, Scope: scopeGlobal},
		component.Env{Node: "dedupe", State: &redisstate.Backend{URL: "redis://127.0.0.1:6379/0", Prefix: prefix}})
	if err != nil {
		t.Fatal(err)
	}
	d := v.(*globalDedupe)
	t.Cleanup(func() { d.Close(context.Background()) })
	return d
}

func TestGivenGlobalDedupeWhenAPassedMessageIsNackedThenItsRedeliveryPasses(t *testing.T) {
	d := globalDedupeOnRedis(t)
	ctx := t.Context()
	process := func() (*pipeline.Message, error) {
		return d.Process(ctx, pipeline.NewMessage([]byte(`{"id": "a"}`), nil))
	}
	first, err := process()
	if err != nil || first == nil {
		t.Fatalf("first sighting: Process = %v, %v; want it passed", first, err)
	}
	if _, err := process(); !isDuplicateDrop(err) {
		t.Fatalf("a duplicate before the nack: Process error = %v, want a drop", err)
	}
	first.Nack(errors.New("sink refused"))
	again, err := process()
	if err != nil || again == nil {
		t.Fatalf("redelivery after the nack: Process = %v, %v; want it passed", again, err)
	}
	if f := d.forgotten.Load(); f != 1 {
		t.Errorf("forgotten = %d, want 1", f)
	}
}
