//go:build scaleout

package scaleout

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	goredis "github.com/redis/go-redis/v9"
)

// broker is one shared work queue the pipe processes consume together.
type broker interface {
	// yaml is the source config of every process.
	yaml() string
	// publish stores the messages {"id": i} for i in [lo, hi).
	publish(t *testing.T, lo, hi int)
	// done reports whether every message was acked.
	done(t *testing.T) bool
}

func unavailable(t *testing.T, what string, err error) {
	t.Helper()
	if os.Getenv("PIPE_REQUIRE_SERVICES") == "1" {
		t.Fatalf("%s is required (PIPE_REQUIRE_SERVICES=1): %v", what, err)
	}
	t.Skipf("%s not reachable: %v (PIPE_REQUIRE_SERVICES=1 makes this a failure)", what, err)
}

// jetStream is a stream with one durable consumer.
type jetStream struct {
	js     jetstream.JetStream
	stream string
}

func newJetStream(t *testing.T) *jetStream {
	nc, err := natsgo.Connect("nats://127.0.0.1:4222")
	if err != nil {
		unavailable(t, "NATS JetStream on 127.0.0.1:4222", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("SCALEOUT_%d", time.Now().UnixNano())
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"}, Storage: jetstream.FileStorage}); err != nil {
		unavailable(t, "NATS JetStream on 127.0.0.1:4222", err)
	}
	t.Cleanup(func() { _ = js.DeleteStream(context.Background(), name) })
	return &jetStream{js: js, stream: name}
}

func (b *jetStream) yaml() string {
	// A short ack_wait so the messages a killed process held come back soon.
	return fmt.Sprintf("nats_jetstream: {stream: %s, durable: pipe, create: true, ack_wait: 2s, max_ack_pending: 4096}", b.stream)
}

func (b *jetStream) publish(t *testing.T, lo, hi int) {
	const window = 4096
	var pending []jetstream.PubAckFuture
	wait := func() {
		for _, f := range pending {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				t.Fatal(err)
			case <-time.After(10 * time.Second):
				t.Fatal("no publish ack")
			}
		}
		pending = pending[:0]
	}
	for i := lo; i < hi; i++ {
		f, err := b.js.PublishAsync(b.stream+".orders", fmt.Appendf(nil, `{"id":%d}`, i))
		if err != nil {
			t.Fatal(err)
		}
		if pending = append(pending, f); len(pending) == window {
			wait()
		}
	}
	wait()
}

func (b *jetStream) done(t *testing.T) bool {
	c, err := b.js.Consumer(t.Context(), b.stream, "pipe")
	if err != nil {
		return false // not created yet
	}
	info, err := c.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.NumPending == 0 && info.NumAckPending == 0
}

// redisStream is a stream with one consumer group.
type redisStream struct {
	rdb *goredis.Client
	key string
}

func newRedisStream(t *testing.T) *redisStream {
	rdb := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"})
	t.Cleanup(func() { rdb.Close() })
	if err := rdb.Ping(t.Context()).Err(); err != nil {
		unavailable(t, "Redis on 127.0.0.1:6379", err)
	}
	key := fmt.Sprintf("scaleout:%d", time.Now().UnixNano())
	t.Cleanup(func() { rdb.Del(context.Background(), key) })
	return &redisStream{rdb: rdb, key: key}
}

func (b *redisStream) yaml() string {
	// A short min_idle so the entries a killed process held are claimed soon.
	return fmt.Sprintf("redis_streams: {stream: %q, group: pipe, create_group: true, min_idle: 2s, claim_interval: 500ms}", b.key)
}

func (b *redisStream) publish(t *testing.T, lo, hi int) {
	for from := lo; from < hi; from += 1000 {
		_, err := b.rdb.Pipelined(t.Context(), func(p goredis.Pipeliner) error {
			for i := from; i < min(from+1000, hi); i++ {
				p.XAdd(t.Context(), &goredis.XAddArgs{Stream: b.key, Values: []string{"body", fmt.Sprintf(`{"id":%d}`, i)}})
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func (b *redisStream) done(t *testing.T) bool {
	groups, err := b.rdb.XInfoGroups(t.Context(), b.key).Result()
	if err != nil || len(groups) == 0 {
		return false
	}
	g := groups[0]
	return g.Lag == 0 && g.Pending == 0
}
