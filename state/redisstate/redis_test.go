package redisstate_test

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/pipe-dsl/pipe/internal/servicetest"
	"github.com/pipe-dsl/pipe/state"
	"github.com/pipe-dsl/pipe/state/internal/storetest"
	"github.com/pipe-dsl/pipe/state/redisstate"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const target = "127.0.0.1:6379"

// backend returns the suite's description of Redis, skipping when it is
// down. Each id gets its own key prefix, deleted after the test.
func backend(t testing.TB) storetest.Backend {
	t.Helper()
	rdb := goredis.NewClient(&goredis.Options{Addr: target})
	t.Cleanup(func() { rdb.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		servicetest.Unavailable(t, "Redis on "+target, err)
	}
	return storetest.Backend{
		Target:     target,
		CommitWord: "exec",
		Lose: func(t testing.TB, id string) {
			if keys, _ := rdb.Keys(context.Background(), "*pipe-test:"+id+":*").Result(); len(keys) > 0 {
				rdb.Del(context.Background(), keys...)
			}
		},
		Open: func(t testing.TB, addr, id string) state.Backend {
			prefix := "pipe-test:" + id + ":"
			t.Cleanup(func() {
				keys, _ := rdb.Keys(context.Background(), "*"+prefix+"*").Result()
				if len(keys) > 0 {
					rdb.Del(context.Background(), keys...)
				}
			})
			return &redisstate.Backend{URL: "redis://" + addr + "/0", Prefix: prefix}
		},
	}
}

func TestStore(t *testing.T)       { storetest.RunStore(t, backend(t)) }
func TestLeases(t *testing.T)      { storetest.RunLeases(t, backend(t)) }
func BenchmarkCommit(b *testing.B) { storetest.BenchCommit(b, backend(b)) }
func BenchmarkClaim(b *testing.B)  { storetest.BenchClaim(b, backend(b)) }
