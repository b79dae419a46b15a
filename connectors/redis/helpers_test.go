package redis_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/pipe-dsl/pipe/connectors/internal/conntest"
	"github.com/pipe-dsl/pipe/connectors/internal/dsltest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// redisAddr is the server the tests use.
const redisAddr = "127.0.0.1:6379"

// server returns a client of the test server; the test skips when it is
// unreachable, or fails with PIPE_REQUIRE_SERVICES=1.
func server(t testing.TB) *goredis.Client {
	t.Helper()
	rdb := goredis.NewClient(&goredis.Options{Addr: redisAddr})
	t.Cleanup(func() { rdb.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		conntest.Unavailable(t, "Redis on 127.0.0.1:6379", err)
	}
	return rdb
}

// unique returns a key unique to this test run, deleted after the test.
func unique(t testing.TB, rdb *goredis.Client, suffix string) string {
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	key := fmt.Sprintf("pipe-test:%s:%d:%s", name, time.Now().UnixNano(), suffix)
	t.Cleanup(func() { rdb.Del(context.Background(), key) })
	return key
}

// add appends bodies to stream as field body, with extra fields.
func add(t testing.TB, rdb *goredis.Client, stream string, bodies []string, extra ...string) {
	t.Helper()
	_, err := rdb.Pipelined(t.Context(), func(p goredis.Pipeliner) error {
		for _, b := range bodies {
			p.XAdd(t.Context(), &goredis.XAddArgs{Stream: stream, Values: append([]string{"body", b}, extra...)})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The harness shared with the other connector tests.
type recorder = conntest.Recorder

var (
	bodies      = conntest.Bodies
	compile     = dsltest.Compile
	start       = conntest.Start
	newRecorder = conntest.NewRecorder
	collect     = conntest.Collect
	envelope    = conntest.Envelope
)

// settled waits until group has read every entry and has none pending.
func settled(t testing.TB, rdb *goredis.Client, stream, group string) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for {
		groups, err := rdb.XInfoGroups(t.Context(), stream).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range groups {
			if g.Name == group && g.Pending == 0 && g.Lag == 0 {
				return
			}
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("group %s has not read and acked every entry: %+v", group, groups)
		}
	}
}
