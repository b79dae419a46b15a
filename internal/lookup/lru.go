package lookup

import (
	"sync"
	"sync/atomic"
)

// lru is the Loader's cache: at most max entries, least recently used
// evicted first, with a read path that takes no lock. Entries carry their
// own expiry, which the Loader checks; lru never expires anything.
//
// Why not internal/ttlcache: every hit there moves its entry to the front
// of the list under the one mutex, and with 64 workers on a loaded machine
// the holder is often descheduled with the lock held, so hits queue behind
// it (the lock was ~99 % of the mutex profile of docs/lookup.md's
// benchmark). Here a hit reads the index (a sync.Map, lock-free for keys
// that are not being written) and moves its node to the front only if the
// list's lock is free (TryLock); a hit that finds it busy skips the move.
// Uncontended, that is an exact LRU; under contention, recency is
// approximate. The bound is always exact. Safe for concurrent use.
//
// Why not a library: hashicorp/golang-lru takes its lock on every Get too;
// ristretto and otter read without locks but admit and evict by frequency
// (TinyLFU, S3-FIFO), not by recency as the lookup cache promises, and
// would add a dependency for ~100 lines.
type lru struct {
	index sync.Map // string -> *node: exactly the nodes in the list

	mu        sync.Mutex // guards the list; every write to index is under it
	root      node       // sentinel: root.next is the most recently used
	len, max  int
	evictions atomic.Uint64
}

// node is one cached key; e is never changed once the node is stored.
type node struct {
	key        string
	e          *entry
	prev, next *node // nil once removed
}

// newLRU returns an empty cache of at most max (>= 1) entries.
func newLRU(max int) *lru {
	c := &lru{max: max}
	c.root.prev, c.root.next = &c.root, &c.root
	return c
}

// Get returns key's entry and marks it as used, unless another goroutine
// holds the list.
func (c *lru) Get(key string) (*entry, bool) {
	v, ok := c.index.Load(key)
	if !ok {
		return nil, false
	}
	n := v.(*node)
	if c.mu.TryLock() {
		if n.prev != nil { // not removed since Load
			c.unlink(n)
			c.pushFront(n)
		}
		c.mu.Unlock()
	}
	return n.e, true
}

// Set stores e under key as the most recently used entry, evicting the
// least recently used one if the cache is full.
func (c *lru) Set(key string, e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.index.Load(key); ok {
		c.remove(v.(*node))
	} else if c.len >= c.max {
		c.remove(c.root.prev)
		c.evictions.Add(1)
	}
	n := &node{key: key, e: e}
	c.pushFront(n)
	c.index.Store(key, n)
	c.len++
}

// DeleteIf removes key if match reports true for its entry.
func (c *lru) DeleteIf(key string, match func(*entry) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.index.Load(key); ok && match(v.(*node).e) {
		c.remove(v.(*node))
	}
}

// Evictions returns the entries removed to make room for another key.
func (c *lru) Evictions() uint64 { return c.evictions.Load() }

// remove takes n out of the list and the index. c.mu must be held.
func (c *lru) remove(n *node) {
	c.unlink(n)
	n.prev, n.next = nil, nil
	c.index.Delete(n.key)
	c.len--
}

func (c *lru) unlink(n *node) {
	n.prev.next, n.next.prev = n.next, n.prev
}

func (c *lru) pushFront(n *node) {
	n.prev, n.next = &c.root, c.root.next
	n.prev.next, n.next.prev = n, n
}
