package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/pipe-dsl/pipe/internal/servicetest"
)

// Two `pipe run` processes share the real Redis through `state:`, as two
// replicas would: together they pass each key once and admit one burst.

// redisPrefix returns a key prefix unique to the test, whose keys are
// deleted afterwards; the test skips when Redis is down.
func redisPrefix(t *testing.T) string {
	t.Helper()
	rdb := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"})
	t.Cleanup(func() { rdb.Close() })
	if err := rdb.Ping(t.Context()).Err(); err != nil {
		servicetest.Unavailable(t, "Redis on 127.0.0.1:6379", err)
	}
	prefix := fmt.Sprintf("pipe-test:%d:", time.Now().UnixNano())
	t.Cleanup(func() {
		if keys, _ := rdb.Keys(context.Background(), "*"+prefix+"*").Result(); len(keys) > 0 {
			rdb.Del(context.Background(), keys...)
		}
	})
	return prefix
}

// runReplicas runs `pipe run` on the file made from src (with %s for the
// output path) in two processes at once and returns every line both wrote.
func runReplicas(t *testing.T, src string) []string {
	t.Helper()
	bin := buildPipe(t)
	dir := t.TempDir()
	var wg sync.WaitGroup
	outs := make([]string, 2)
	for i := range outs {
		outs[i] = filepath.Join(dir, fmt.Sprintf("out%d.ndjson", i))
		file := writeFile(t, fmt.Sprintf("replica%d.yaml", i), fmt.Sprintf(src, outs[i]))
		wg.Go(func() {
			out, err := exec.Command(bin, "run", "--quiet", "--log-format", "json", file).CombinedOutput()
			if err != nil {
				t.Errorf("replica %d: %v\n%s", i, err, out)
			}
		})
	}
	wg.Wait()
	var lines []string
	for _, o := range outs {
		b, err := os.ReadFile(o)
		if err != nil && !os.IsNotExist(err) { // a replica that passed nothing wrote no file
			t.Fatal(err)
		}
		lines = append(lines, strings.Fields(string(b))...)
	}
	return lines
}

func TestTwoProcessesWithGlobalDedupePassEachKeyOnce(t *testing.T) {
	const n = 500
	lines := runReplicas(t, `
name: replicas
state: {redis: {url: "redis://127.0.0.1:6379/0", prefix: "`+redisPrefix(t)+`"}}
source: {generate: {count: `+fmt.Sprint(n)+`, message: '{"id": seq}'}}
stages:
  - dedupe: {key: msg.id, ttl: 1h, scope: global}
    workers: 4
sink: {file: {path: "%s"}}
`)
	seen := map[string]int{}
	for _, l := range lines {
		seen[l]++
	}
	for i := 1; i <= n; i++ {
		if l := fmt.Sprintf(`{"id":%d}`, i); seen[l] != 1 {
			t.Errorf("%s written %d times, want once", l, seen[l])
		}
	}
	if len(lines) != n {
		t.Errorf("%d lines, want %d", len(lines), n)
	}
}

func TestTwoProcessesWithGlobalThrottleAdmitOneBurstTogether(t *testing.T) {
	// One message per 1000s after the burst: during the test the two
	// processes together admit the burst, where each alone would.
	const burst = 30
	lines := runReplicas(t, `
name: replicas
state: {redis: {url: "redis://127.0.0.1:6379/0", prefix: "`+redisPrefix(t)+`"}}
source: {generate: {count: 200, message: '{"id": seq}'}}
stages:
  - throttle: {rate: 0.001, burst: `+fmt.Sprint(burst)+`, on_limit: drop, scope: global}
sink: {file: {path: "%s"}}
`)
	if len(lines) != burst {
		t.Errorf("the two processes admitted %d, want %d", len(lines), burst)
	}
}
