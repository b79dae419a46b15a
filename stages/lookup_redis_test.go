package stages_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/pipe-dsl/pipe/dsl"
)

// redisPrefix returns a unique key prefix and deletes its keys after the test.
func redisPrefix(t *testing.T, c *goredis.Client) string {
	p := fmt.Sprintf("lk:%d:%d:", time.Now().UnixNano(), rand.IntN(1e6))
	t.Cleanup(func() {
		ctx := context.Background()
		keys, _ := c.Keys(ctx, p+"*").Result()
		if len(keys) > 0 {
			c.Del(ctx, keys...)
		}
	})
	return p
}

// monitor counts, server side, the commands named cmd that mention
// prefix, read from a raw MONITOR connection; stop ends it and returns
// the count.
func monitor(t *testing.T, c *goredis.Client, cmd, prefix string) (stop func() int) {
	conn, err := net.Dial("tcp", "127.0.0.1:6379")
	if err != nil {
		unavailable(t, "Redis at 127.0.0.1:6379", err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.Write([]byte("MONITOR\r\n")); err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(conn)
	if line, err := rd.ReadString('\n'); err != nil || !strings.HasPrefix(line, "+OK") {
		t.Fatalf("MONITOR: %q, %v", line, err)
	}
	n := 0
	// wait reads lines until one mentions marker, counting cmd lines.
	wait := func(marker string) {
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		c.Get(context.Background(), marker)
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				t.Fatalf("MONITOR: %v", err)
			}
			switch {
			case strings.Contains(line, marker):
				return
			case strings.Contains(strings.ToLower(line), `"`+cmd+`"`) && strings.Contains(line, prefix):
				n++
			}
		}
	}
	return func() int {
		// MONITOR shows commands in order: once it shows the end marker it
		// has shown every command before it.
		wait(prefix + "monitor-end")
		return n
	}
}

func TestLookupRedisGetAndHGetAll(t *testing.T) {
	c := openRedis(t)
	p := redisPrefix(t, c)
	ctx := context.Background()
	c.Set(ctx, p+"1", `{"tier":"gold"}`, 0)
	c.Set(ctx, p+"2", `plain`, 0)
	c.HSet(ctx, p+"h1", "tier", "silver", "name", "ann")
	r := runLookup(t, "lk_rget", fmt.Sprintf(`  - lookup:
      redis: {url: "redis://127.0.0.1:6379/0", key: '"%s" + string(key)'}
      key: msg.customer_id
      into: customer
      coalesce: {max_keys: 3, max_wait: 1h}
    workers: 3
    ordered: true`, p), orders(3, func(i int) int { return i + 1 })...)
	want := []string{`{"customer":{"tier":"gold"},"customer_id":1,"seq":0}`, `{"customer":"plain","customer_id":2,"seq":1}`, `{"seq":2,"customer_id":3}`}
	if !slices.Equal(r.out, want) || r.figures["round_trips"] != 1 {
		t.Fatalf("sink %q, figures %v; want %q in 1 round trip", r.out, r.figures, want)
	}
	r = runLookup(t, "lk_rhash", fmt.Sprintf(`  - lookup:
      redis: {url: "redis://127.0.0.1:6379/0", command: HGETALL, key: '"%sh" + string(msg.customer_id)'}
      on_missing: drop`, p), `{"customer_id":1}`, `{"customer_id":2}`)
	if want := []string{`{"customer_id":1,"name":"ann","tier":"silver"}`}; !slices.Equal(r.out, want) {
		t.Fatalf("sink %q, want %q", r.out, want)
	}
}

// Given 1,000 messages with one key, when looked up in Redis with a cache,
// then Redis sees exactly one MGET for the key (counted with MONITOR).
func TestLookupRedisThousandMessagesOneKeyMakeOneMGET(t *testing.T) {
	c := openRedis(t)
	p := redisPrefix(t, c)
	c.Set(context.Background(), p+"7", `{"tier":"gold"}`, 0)
	stop := monitor(t, c, "mget", p)
	r := runLookup(t, "lk_rsingle", fmt.Sprintf(`  - lookup:
      redis: {url: "redis://127.0.0.1:6379/0", key: '"%s" + string(key)'}
      key: msg.customer_id
      into: customer
      cache: {ttl: 1h}
    workers: 64`, p), orders(1000, func(int) int { return 7 })...)
	n := stop()
	if len(r.out) != 1000 {
		t.Fatalf("sink got %d, want 1000", len(r.out))
	}
	if n != 1 {
		t.Fatalf("Redis saw %d MGETs of the key, want 1", n)
	}
}

// Given max_conns 2 and 32 workers, when 2,000 distinct keys are looked
// up, then CLIENT LIST never shows more than 2 connections of the stage,
// and none after the run.
func TestLookupRedisNeverOpensMoreThanMaxConns(t *testing.T) {
	c := openRedis(t)
	p := redisPrefix(t, c)
	name := fmt.Sprintf("lk_rpool_%d", rand.IntN(1e9))
	count := func() int {
		list, err := c.ClientList(context.Background()).Result()
		if err != nil {
			t.Error(err)
		}
		return strings.Count(list, "name=pipe/"+name+"/lookup ")
	}
	cp, out, dlq := compileLookup(t, name, fmt.Sprintf(`  - lookup:
      redis: {url: "redis://127.0.0.1:6379/0", key: '"%s" + string(key)'}
      key: msg.customer_id
      max_conns: 2
    workers: 32`, p), nil, orders(2000, func(i int) int { return i })...)
	stopSampling := make(chan struct{})
	most := peak(count, stopSampling)
	err := cp.Run(t.Context())
	close(stopSampling)
	if err != nil {
		t.Fatal(err)
	}
	r := collect(t, cp, out, dlq)
	if len(r.out) != 2000 {
		t.Fatalf("sink got %d, dead letters %d; want 2000", len(r.out), len(r.dls))
	}
	if m := most(); m == 0 || m > 2 {
		t.Fatalf("peak connections = %d, want 1..2", m)
	}
	deadline := time.Now().Add(5 * time.Second)
	for count() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections left after the run", count())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Given a Redis URL with a password, when the server is down or the URL is
// malformed, then no error shows the password.
func TestLookupRedisNeverShowsThePassword(t *testing.T) {
	const secret = "r3dis-pw-456"
	t.Setenv("LK_REDIS_URL", "redis://user:"+secret+"@127.0.0.1:1/0")
	r := runLookup(t, "lk_rsecret", `  - lookup:
      redis: {url: "${LK_REDIS_URL}"}
      key: msg.customer_id`, `{"customer_id":1}`)
	if len(r.dls) != 1 || strings.Contains(fmt.Sprintf("%+v", r.dls[0]), secret) {
		t.Fatalf("dead letters = %+v, want one without the password", r.dls)
	}
	t.Setenv("LK_REDIS_URL", "redis://user:"+secret+"@127.0.0.1:notaport/0")
	cfg, err := dsl.Parse("bad.yaml", []byte(`name: bad
source: {generate: {count: 1, message: '{}'}}
stages:
  - lookup: {redis: {url: "${LK_REDIS_URL}"}, key: msg.id}
sink: {stdout: {}}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = dsl.Compile(cfg, nil)
	if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "value not shown") {
		t.Fatalf("Compile error = %v, want one about the url without the password", err)
	}
}
