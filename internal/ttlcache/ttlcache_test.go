package ttlcache

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func wantGet[K comparable, V comparable](t *testing.T, c *Cache[K, V], key K, now time.Duration, want V, wantOK bool) {
	t.Helper()
	got, ok := c.Get(key, at(now))
	if got != want || ok != wantOK {
		t.Errorf("Get(%v, t0+%v) = %v, %v, want %v, %v", key, now, got, ok, want, wantOK)
	}
}

func wantStats[K comparable, V any](t *testing.T, c *Cache[K, V], want Stats) {
	t.Helper()
	if got := c.Stats(); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
}

func TestCacheEvictsTheLeastRecentlyUsedKey(t *testing.T) {
	c := New[string, int](3, 0)
	c.Set("a", 1, t0)
	c.Set("b", 2, t0)
	c.Set("c", 3, t0)
	wantGet(t, c, "a", 0, 1, true) // a is now most recent; b is least
	if !c.Set("d", 4, t0) {
		t.Errorf("Set(d) on a full cache = false, want true (evicted)")
	}
	wantGet(t, c, "b", 0, 0, false)
	if c.Set("a", 10, t0) {
		t.Errorf("Set(a) overwriting = true, want false")
	}
	c.Set("e", 5, t0) // c is least recent
	wantGet(t, c, "c", 0, 0, false)
	wantGet(t, c, "a", 0, 10, true)
	wantGet(t, c, "d", 0, 4, true)
	wantGet(t, c, "e", 0, 5, true)
	if got := c.Len(); got != 3 {
		t.Errorf("Len() = %d, want 3", got)
	}
	wantStats(t, c, Stats{Evictions: 2})
}

func TestNewExpiresTTLAfterTheLastWriteRegardlessOfReads(t *testing.T) {
	c := New[string, int](10, time.Minute)
	c.Set("k", 1, t0)
	wantGet(t, c, "k", 59*time.Second, 1, true) // a read does not extend
	wantGet(t, c, "k", time.Minute, 0, false)   // expired at exactly ttl
	if got := c.Len(); got != 0 {
		t.Errorf("Len() after an expired Get = %d, want 0", got)
	}
	c.Set("k", 2, at(2*time.Minute))
	c.Set("k", 3, at(2*time.Minute+30*time.Second)) // a write does extend
	wantGet(t, c, "k", 3*time.Minute+29*time.Second, 3, true)
	wantGet(t, c, "k", 3*time.Minute+30*time.Second, 0, false)
	wantStats(t, c, Stats{Expirations: 2})
}

func TestNewIdleExpiresTTLAfterTheLastAccess(t *testing.T) {
	c := NewIdle[string, int](10, time.Minute)
	c.Set("k", 1, t0)
	for m := 1; m <= 5; m++ { // each read 59s after the previous keeps it alive
		wantGet(t, c, "k", time.Duration(m)*59*time.Second, 1, true)
	}
	wantGet(t, c, "k", 5*59*time.Second+time.Minute, 0, false)
	wantStats(t, c, Stats{Expirations: 1})
}

func TestSeenDedupesWithinTTLOfTheFirstSighting(t *testing.T) {
	c := New[string, struct{}](10, time.Minute)
	for _, s := range []struct {
		at   time.Duration
		seen bool
	}{
		{0, false},
		{30 * time.Second, true},
		{59 * time.Second, true}, // still within ttl of the first sighting at 0
		{time.Minute, false},     // ttl after the first sighting: new again
		{time.Minute + 59*time.Second, true},
		{2 * time.Minute, false},
	} {
		if got := c.Seen("k", at(s.at)); got != s.seen {
			t.Errorf("Seen(k, t0+%v) = %v, want %v", s.at, got, s.seen)
		}
	}
}

func TestSeenOnNewIdleDedupesWithinTTLOfTheLatestSighting(t *testing.T) {
	c := NewIdle[string, struct{}](10, time.Minute)
	for _, s := range []struct {
		at   time.Duration
		seen bool
	}{
		{0, false},
		{59 * time.Second, true},
		{time.Minute + 58*time.Second, true},
		{3 * time.Minute, false},
	} {
		if got := c.Seen("k", at(s.at)); got != s.seen {
			t.Errorf("Seen(k, t0+%v) = %v, want %v", s.at, got, s.seen)
		}
	}
}

func TestGetOrSetCreatesOnlyOnAMiss(t *testing.T) {
	c := NewIdle[string, *int](10, time.Minute)
	calls := 0
	newValue := func() *int { calls++; v := calls; return &v }
	v1, found := c.GetOrSet("k", t0, newValue)
	if found || *v1 != 1 {
		t.Errorf("GetOrSet(k) on empty cache = %d, %v, want 1, false", *v1, found)
	}
	v2, found := c.GetOrSet("k", at(30*time.Second), newValue)
	if !found || v2 != v1 {
		t.Errorf("GetOrSet(k) again = %p, %v, want %p, true", v2, found, v1)
	}
	v3, found := c.GetOrSet("k", at(2*time.Minute), newValue)
	if found || *v3 != 2 {
		t.Errorf("GetOrSet(k) after idling out = %d, %v, want 2, false", *v3, found)
	}
}

func TestSweepRemovesOnlyExpiredEntries(t *testing.T) {
	c := New[int, int](10, time.Minute)
	for i := range 6 {
		c.Set(i, i, at(time.Duration(i)*10*time.Second))
	}
	c.Get(0, at(55*time.Second)) // reordering does not matter to Sweep
	if got := c.Sweep(at(80 * time.Second)); got != 3 {
		t.Errorf("Sweep(t0+80s) = %d, want 3 (set at 0s, 10s, 20s)", got)
	}
	if got := c.Len(); got != 3 {
		t.Errorf("Len() = %d, want 3", got)
	}
	for i := range 6 {
		_, ok := c.Get(i, at(80*time.Second))
		if ok != (i >= 3) {
			t.Errorf("Get(%d, t0+80s) ok = %v, want %v", i, ok, i >= 3)
		}
	}
	wantStats(t, c, Stats{Expirations: 3})
	if got := c.Sweep(at(time.Hour)); got != 3 {
		t.Errorf("Sweep(t0+1h) = %d, want 3", got)
	}
}

func TestSetOnAFullCacheCountsAnExpiredTailAsAnExpiration(t *testing.T) {
	c := New[int, int](2, time.Minute)
	c.Set(1, 1, t0)
	c.Set(2, 2, at(time.Minute))
	if c.Set(3, 3, at(time.Minute)) {
		t.Errorf("Set(3) replacing an expired tail = true, want false")
	}
	wantStats(t, c, Stats{Expirations: 1})
}

func TestDeleteRemovesAKey(t *testing.T) {
	c := New[string, int](2, 0)
	c.Set("a", 1, t0)
	if !c.Delete("a") {
		t.Errorf("Delete(a) = false, want true")
	}
	if c.Delete("a") {
		t.Errorf("Delete(a) twice = true, want false")
	}
	wantGet(t, c, "a", 0, 0, false)
	c.Set("b", 2, t0)
	c.Set("c", 3, t0)
	wantStats(t, c, Stats{}) // the deleted slot was free, nothing evicted
}

func TestCacheStaysBoundedUnderAMillionDistinctKeys(t *testing.T) {
	const n, maxKeys = 1_000_000, 1000
	c := New[int, int](maxKeys, time.Hour)
	for i := range n {
		c.Set(i, i, t0)
		if l := c.Len(); l > maxKeys {
			t.Fatalf("Len() after %d keys = %d, want <= %d", i+1, l, maxKeys)
		}
	}
	wantStats(t, c, Stats{Evictions: n - maxKeys})
	for i := n - maxKeys; i < n; i++ { // the newest maxKeys survive
		if v, ok := c.Get(i, t0); !ok || v != i {
			t.Fatalf("Get(%d) = %d, %v, want %d, true", i, v, ok, i)
		}
	}
}

func TestNewPanicsOnInvalidArguments(t *testing.T) {
	for _, tc := range []struct {
		maxKeys int
		ttl     time.Duration
	}{{0, 0}, {-1, time.Second}, {1, -time.Second}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%d, %v) did not panic", tc.maxKeys, tc.ttl)
				}
			}()
			New[int, int](tc.maxKeys, tc.ttl)
		}()
	}
}

func TestCacheIsSafeForConcurrentUse(t *testing.T) {
	c := NewIdle[int, int](100, time.Second)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				now := at(time.Duration(i) * time.Millisecond)
				k := (g*7 + i) % 300
				c.Set(k, i, now)
				c.Get(k+1, now)
				c.Seen(k+2, now)
				c.GetOrSet(k+3, now, func() int { return i })
				if i%100 == 0 {
					c.Sweep(now)
					c.Delete(k)
				}
			}
		})
	}
	wg.Wait()
	if l := c.Len(); l > 100 {
		t.Errorf("Len() = %d, want <= 100", l)
	}
}

func BenchmarkGetHit(b *testing.B) {
	c := New[string, int](1024, time.Hour)
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = strconv.Itoa(i)
		c.Set(keys[i], i, t0)
	}
	i := 0
	for b.Loop() {
		c.Get(keys[i&1023], t0)
		i++
	}
}

func BenchmarkSetEvicting(b *testing.B) {
	c := New[int, int](1024, time.Hour)
	i := 0
	for b.Loop() {
		c.Set(i, i, t0)
		i++
	}
}

func BenchmarkSeenParallel(b *testing.B) {
	c := New[int, struct{}](1<<16, time.Minute)
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			c.Seen(i&(1<<17-1), t0)
			i++
		}
	})
}

func ExampleCache_Seen() {
	// Drop messages whose ID was seen within 5 minutes of its first sighting.
	seen := New[string, struct{}](100_000, 5*time.Minute)
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, m := range []struct {
		id string
		at time.Duration
	}{{"a", 0}, {"a", time.Minute}, {"b", time.Minute}, {"a", 5 * time.Minute}} {
		fmt.Println(m.id, m.at, "duplicate:", seen.Seen(m.id, start.Add(m.at)))
	}
	// Output:
	// a 0s duplicate: false
	// a 1m0s duplicate: true
	// b 1m0s duplicate: false
	// a 5m0s duplicate: false
}

func ExampleNewIdle() {
	// One counter per customer, dropped after 10 minutes without traffic.
	type counter struct{ n int }
	table := NewIdle[string, *counter](10_000, 10*time.Minute)
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, d := range []time.Duration{0, 9 * time.Minute, 18 * time.Minute, 40 * time.Minute} {
		c, _ := table.GetOrSet("acme", start.Add(d), func() *counter { return new(counter) })
		c.n++
		fmt.Println(d, c.n)
	}
	// Output:
	// 0s 1
	// 9m0s 2
	// 18m0s 3
	// 40m0s 1
}

func TestDeleteIfRemovesOnlyAMatchingValue(t *testing.T) {
	c := New[string, int](10, time.Minute)
	c.Set("k", 1, t0)
	is := func(want int) func(int) bool { return func(v int) bool { return v == want } }
	if c.DeleteIf("k", is(2)) {
		t.Errorf("DeleteIf(k, ==2) with value 1 = true, want false")
	}
	wantGet(t, c, "k", 0, 1, true)
	if !c.DeleteIf("k", is(1)) {
		t.Errorf("DeleteIf(k, ==1) with value 1 = false, want true")
	}
	wantGet(t, c, "k", 0, 0, false)
	if c.DeleteIf("missing", is(0)) {
		t.Errorf("DeleteIf(missing) = true, want false")
	}
}

func TestInsertReleasesIdleKeysFromTheTail(t *testing.T) {
	c := NewIdle[int, int](1000, time.Minute)
	for i := range 100 {
		c.Set(i, i, t0)
	}
	// An hour later the 100 keys are idle; each new key trims up to
	// trimBatch of them, so 100/trimBatch inserts release all of them.
	for i := range 100 / trimBatch {
		c.Set(1000+i, i, at(time.Hour))
	}
	if got, want := c.Len(), 100/trimBatch; got != want {
		t.Errorf("Len() = %d, want %d (only the new keys)", got, want)
	}
	wantStats(t, c, Stats{Expirations: 100})
}

func ExampleCache_DeleteIf() {
	// Remember an ID when its message passes; forget it if delivery fails,
	// but only if no later sighting replaced it.
	seen := New[string, uint64](1000, time.Hour)
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	const sighting = 1
	_, dup := seen.GetOrSet("order-7", now, func() uint64 { return sighting })
	fmt.Println("duplicate:", dup)
	// ... delivery failed:
	fmt.Println("forgotten:", seen.DeleteIf("order-7", func(v uint64) bool { return v == sighting }))
	_, dup = seen.GetOrSet("order-7", now, func() uint64 { return 2 })
	fmt.Println("redelivery duplicate:", dup)
	// Output:
	// duplicate: false
	// forgotten: true
	// redelivery duplicate: false
}

func TestKeptEntriesNeitherExpireNorMakeRoom(t *testing.T) {
	// Values are the time until which an entry must be kept.
	keep := func(until time.Time, now time.Time) bool { return now.Before(until) }
	c := NewIdleKept[string, time.Time](2, time.Second, keep)
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, k := range []string{"a", "b"} {
		if _, _, ok := c.TryGetOrSet(k, now, func() time.Time { return now.Add(time.Minute) }); !ok {
			t.Fatalf("TryGetOrSet(%s) on a cache with room: ok false", k)
		}
	}
	if _, _, ok := c.TryGetOrSet("c", now, func() time.Time { return now }); ok {
		t.Errorf("TryGetOrSet(c) at a full cache of kept entries: ok true, want false (nothing evicted)")
	}
	now = now.Add(30 * time.Second) // past the ttl, still kept
	if _, found := c.Get("a", now); !found {
		t.Errorf("Get(a) after its ttl while kept: not found, want found")
	}
	now = now.Add(time.Minute) // past keep: b expires, a (used at 30s) too
	if _, found, ok := c.TryGetOrSet("c", now, func() time.Time { return now }); !ok || found {
		t.Errorf("TryGetOrSet(c) once nothing is kept = found %v, ok %v; want stored", found, ok)
	}
	if s := c.Stats(); s.Evictions != 0 || s.Expirations == 0 {
		t.Errorf("Stats() = %+v, want expirations only", s)
	}
}
