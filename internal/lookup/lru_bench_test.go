package lookup

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/internal/ttlcache"
)

// Cache hits on 10,000 keys from 64 goroutines per CPU, the lookup
// benchmark's shape (docs/lookup.md): this cache beside internal/ttlcache,
// which the Loader used before.
//
//	go test -run '^$' -bench 'CacheHits' -count 6 ./internal/lookup/
func BenchmarkCacheHits(b *testing.B) {
	keys := make([]string, 10000)
	for i := range keys {
		keys[i] = strconv.Itoa(i + 1)
	}
	run := func(b *testing.B, get func(string) bool) {
		var next atomic.Uint64
		b.SetParallelism(32)
		b.RunParallel(func(pb *testing.PB) {
			i := next.Add(7919)
			for pb.Next() {
				i++
				if !get(keys[i%uint64(len(keys))]) {
					b.Error("miss")
					return
				}
			}
		})
	}
	b.Run("lru", func(b *testing.B) {
		c := newLRU(20000)
		for _, k := range keys {
			c.Set(k, &entry{val: k})
		}
		run(b, func(k string) bool { _, ok := c.Get(k); return ok })
	})
	b.Run("ttlcache", func(b *testing.B) {
		c := ttlcache.New[string, *entry](20000, 0)
		now := time.Now()
		for _, k := range keys {
			c.Set(k, &entry{val: k}, now)
		}
		run(b, func(k string) bool { _, ok := c.Get(k, now); return ok })
	})
}
