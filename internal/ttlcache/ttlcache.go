// Package ttlcache provides a bounded, generic LRU cache whose entries expire
// after a time-to-live.
package ttlcache

import (
	"fmt"
	"sync"
	"time"
)

// A Cache maps keys to values, holding at most maxKeys entries. When a new
// key arrives at a full cache, the least recently used entry is evicted.
// Every operation is O(1) except Sweep.
//
// Entries expire ttl after a reference time that depends on the constructor:
//
//   - New: ttl after the entry was last written (Set, or Seen/GetOrSet
//     inserting it). Reads do not extend it. Use this for caches and for
//     dedupe where "seen within ttl" means within ttl of the first sighting.
//   - NewIdle: ttl after the entry was last accessed by any operation. Use
//     this for keyed tables, such as one rate limiter per customer, that
//     should keep an entry while it is in use and drop it once idle.
//
// An entry is expired at now when now >= reference+ttl; a ttl of 0 means
// entries never expire and are removed only by eviction or Delete. Expired
// entries are misses: Get, Seen and GetOrSet remove them when they find them,
// every insert of a new key removes a few from the least recently used end,
// and Sweep removes all of them. Until then they occupy space and count in
// Len.
//
// A Cache owns no goroutines and never reads the clock: every operation that
// depends on time takes the current time explicitly.
//
// The zero value is not usable; create Caches with New or NewIdle. A Cache is
// safe for concurrent use by multiple goroutines.
type Cache[K comparable, V any] struct {
	maxKeys int
	ttl     time.Duration
	idle    bool
	keep    func(v V, now time.Time) bool // nil: nothing outlives its ttl

	mu    sync.Mutex
	items map[K]*entry[K, V]
	root  entry[K, V] // sentinel: root.next is most recently used
	stats Stats
}

// Stats counts entries removed by the cache itself.
type Stats struct {
	// Evictions counts unexpired entries removed to make room for a new key.
	Evictions uint64
	// Expirations counts expired entries removed, whether found by a lookup,
	// by Sweep, or at the tail when making room.
	Expirations uint64
}

type entry[K comparable, V any] struct {
	key        K
	val        V
	expires    time.Time // zero when the cache has no ttl
	prev, next *entry[K, V]
}

// New returns a Cache of at most maxKeys entries that expire ttl after they
// were last written. It panics if maxKeys < 1 or ttl < 0.
func New[K comparable, V any](maxKeys int, ttl time.Duration) *Cache[K, V] {
	return newCache[K, V](maxKeys, ttl, false)
}

// NewIdle returns a Cache of at most maxKeys entries that expire ttl after
// they were last accessed. It panics if maxKeys < 1 or ttl < 0.
func NewIdle[K comparable, V any](maxKeys int, ttl time.Duration) *Cache[K, V] {
	return newCache[K, V](maxKeys, ttl, true)
}

// NewIdleKept is NewIdle for values that must outlive their ttl while keep
// reports true for them, such as a rate limiter still holding back its key:
// a kept entry does not expire, and TryGetOrSet never evicts it. keep is
// called with the cache locked and must not use the cache.
func NewIdleKept[K comparable, V any](maxKeys int, ttl time.Duration, keep func(v V, now time.Time) bool) *Cache[K, V] {
	c := newCache[K, V](maxKeys, ttl, true)
	c.keep = keep
	return c
}

func newCache[K comparable, V any](maxKeys int, ttl time.Duration, idle bool) *Cache[K, V] {
	if maxKeys < 1 {
		panic(fmt.Sprintf("ttlcache: maxKeys %d < 1", maxKeys))
	}
	if ttl < 0 {
		panic(fmt.Sprintf("ttlcache: ttl %v < 0", ttl))
	}
	c := &Cache[K, V]{maxKeys: maxKeys, ttl: ttl, idle: idle, items: make(map[K]*entry[K, V])}
	c.root.next, c.root.prev = &c.root, &c.root
	return c
}

// Get returns the value for key and true if it is present and unexpired at
// now, marking it most recently used (and, for NewIdle, extending its life).
// Otherwise it returns the zero V and false, removing the entry if it had
// expired.
func (c *Cache[K, V]) Get(key K, now time.Time) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.lookup(key, now); e != nil {
		return e.val, true
	}
	var zero V
	return zero, false
}

// Set stores v for key, marking it most recently used and starting its ttl
// at now. It reports whether an unexpired entry was evicted to make room.
func (c *Cache[K, V]) Set(key K, v V, now time.Time) (evicted bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[key]; ok {
		e.val = v
		c.moveToFront(e)
		c.setExpiry(e, now)
		return false
	}
	_, evicted = c.insert(key, v, now)
	return evicted
}

// GetOrSet returns the value for key and true if it is present and unexpired
// at now, as Get does. Otherwise it stores newValue() for key, as Set does,
// and returns that value and false. newValue is called with the cache locked
// and must not use the cache.
func (c *Cache[K, V]) GetOrSet(key K, now time.Time, newValue func() V) (v V, found bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.lookup(key, now); e != nil {
		return e.val, true
	}
	e, _ := c.insert(key, newValue(), now)
	return e.val, false
}

// TryGetOrSet is GetOrSet that never evicts a kept entry (see
// NewIdleKept): when key is absent, the cache is full and its least recently
// used entry is kept at now, it stores nothing and returns ok false. Only the
// least recently used entry is considered, so the call stays O(1). In every
// other case ok is true and v and found are GetOrSet's results.
func (c *Cache[K, V]) TryGetOrSet(key K, now time.Time, newValue func() V) (v V, found, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.lookup(key, now); e != nil {
		return e.val, true, true
	}
	c.trim(now)
	if len(c.items) >= c.maxKeys && c.keep != nil && c.keep(c.root.prev.val, now) {
		var zero V
		return zero, false, false
	}
	e, _ := c.insert(key, newValue(), now)
	return e.val, false, true
}

// Seen is the dedupe operation: it reports whether key is present and
// unexpired at now, and if not, stores it with the zero V. With New, a key
// stays seen for ttl after its first sighting no matter how often it
// recurs; with NewIdle, for ttl after its latest sighting.
func (c *Cache[K, V]) Seen(key K, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lookup(key, now) != nil {
		return true
	}
	var zero V
	c.insert(key, zero, now)
	return false
}

// Delete removes key and reports whether it was present, expired or not.
func (c *Cache[K, V]) Delete(key K) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[key]
	if ok {
		c.remove(e)
	}
	return ok
}

// DeleteIf removes key if it is present and match reports true for its
// value, and reports whether it removed it. match is called with the cache
// locked and must not use the cache. Use it to undo a Seen or GetOrSet only
// if the entry is still the one the caller stored.
func (c *Cache[K, V]) DeleteIf(key K, match func(V) bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[key]
	if !ok || !match(e.val) {
		return false
	}
	c.remove(e)
	return true
}

// Sweep removes every entry expired at now and returns how many it removed.
// It takes time proportional to Len, holding the lock throughout.
func (c *Cache[K, V]) Sweep(now time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for e := c.root.prev; e != &c.root; {
		prev := e.prev
		if c.expired(e, now) {
			c.remove(e)
			n++
		}
		e = prev
	}
	c.stats.Expirations += uint64(n)
	return n
}

// Len returns the number of entries, including expired ones not yet removed.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items)
}

// Stats returns the eviction and expiration counts since the cache was
// created.
func (c *Cache[K, V]) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// lookup returns the unexpired entry for key, marked as used, or nil,
// removing the entry if it had expired. c.mu must be held.
func (c *Cache[K, V]) lookup(key K, now time.Time) *entry[K, V] {
	e, ok := c.items[key]
	if !ok {
		return nil
	}
	if c.expired(e, now) {
		c.remove(e)
		c.stats.Expirations++
		return nil
	}
	c.moveToFront(e)
	if c.idle {
		c.setExpiry(e, now)
	}
	return e
}

// trimBatch bounds how many expired entries one insert removes from the
// tail, so an insert after a long quiet spell stays O(1).
const trimBatch = 4

// insert adds an entry for a key not in the cache, first removing up to
// trimBatch expired entries from the least recently used end, then, if the
// cache is still full, the least recently used entry. c.mu must be held.
//
// Trimming releases keys that went idle without waiting for a Sweep: with
// NewIdle the tail is always the entry expiring first, so the expired
// entries left by a burst of keys are released over the next inserts.
func (c *Cache[K, V]) insert(key K, v V, now time.Time) (e *entry[K, V], evicted bool) {
	c.trim(now)
	if len(c.items) >= c.maxKeys {
		e = c.root.prev
		if c.expired(e, now) {
			c.stats.Expirations++
		} else {
			c.stats.Evictions++
			evicted = true
		}
		c.remove(e)
		*e = entry[K, V]{} // reuse the allocation; drop references to old key and value
	} else {
		e = new(entry[K, V])
	}
	e.key, e.val = key, v
	c.setExpiry(e, now)
	c.items[key] = e
	e.prev, e.next = &c.root, c.root.next
	e.prev.next, e.next.prev = e, e
	return e, evicted
}

// trim removes up to trimBatch expired entries from the least recently used
// end. c.mu must be held.
func (c *Cache[K, V]) trim(now time.Time) {
	for range trimBatch {
		tail := c.root.prev
		if tail == &c.root || !c.expired(tail, now) {
			break
		}
		c.remove(tail)
		c.stats.Expirations++
	}
}

func (c *Cache[K, V]) setExpiry(e *entry[K, V], now time.Time) {
	if c.ttl > 0 {
		e.expires = now.Add(c.ttl)
	}
}

func (c *Cache[K, V]) expired(e *entry[K, V], now time.Time) bool {
	return c.ttl > 0 && !now.Before(e.expires) && (c.keep == nil || !c.keep(e.val, now))
}

func (c *Cache[K, V]) moveToFront(e *entry[K, V]) {
	if c.root.next == e {
		return
	}
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = &c.root, c.root.next
	e.prev.next, e.next.prev = e, e
}

func (c *Cache[K, V]) remove(e *entry[K, V]) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
	delete(c.items, e.key)
}
