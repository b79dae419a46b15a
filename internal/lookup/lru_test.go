package lookup

import (
	"fmt"
	"sync"
	"testing"
)

// check asserts that the list and the index hold the same len nodes, in a
// list linked both ways.
func (c *lru) check(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for nd := c.root.next; nd != &c.root; nd = nd.next {
		if nd.next.prev != nd {
			t.Fatalf("list broken at %q", nd.key)
		}
		if v, ok := c.index.Load(nd.key); !ok || v.(*node) != nd {
			t.Fatalf("index[%q] is not the listed node", nd.key)
		}
		n++
	}
	indexed := 0
	c.index.Range(func(any, any) bool { indexed++; return true })
	if n != c.len || indexed != c.len || c.len > c.max {
		t.Fatalf("listed %d, indexed %d, len %d, max %d", n, indexed, c.len, c.max)
	}
}

func TestLRUGivenNoContentionWhenFullThenEvictsLeastRecentlyUsed(t *testing.T) {
	c := newLRU(2)
	a, b, d := &entry{val: "a"}, &entry{val: "b"}, &entry{val: "d"}
	c.Set("a", a)
	c.Set("b", b)
	if e, ok := c.Get("a"); !ok || e != a { // b is now least recently used
		t.Fatalf("Get(a) = %v, %v, want a, true", e, ok)
	}
	c.Set("d", d)
	if _, ok := c.Get("b"); ok {
		t.Fatal("Get(b) found b, want it evicted")
	}
	for k, want := range map[string]*entry{"a": a, "d": d} {
		if e, ok := c.Get(k); !ok || e != want {
			t.Fatalf("Get(%s) = %v, %v, want %v, true", k, e, ok, want)
		}
	}
	if got := c.Evictions(); got != 1 {
		t.Fatalf("Evictions() = %d, want 1", got)
	}
	c.check(t)
}

func TestLRUGivenAKeyWhenSetAgainOrDeletedThenReplacedWithoutEviction(t *testing.T) {
	c := newLRU(2)
	old, repl := &entry{val: 1}, &entry{val: 2}
	c.Set("k", old)
	c.Set("k", repl)
	if e, _ := c.Get("k"); e != repl {
		t.Fatalf("Get(k) = %v, want the replacement", e)
	}
	c.DeleteIf("k", func(e *entry) bool { return e == old }) // not the stored one
	if _, ok := c.Get("k"); !ok {
		t.Fatal("DeleteIf removed an entry match refused")
	}
	c.DeleteIf("k", func(e *entry) bool { return e == repl })
	if _, ok := c.Get("k"); ok {
		t.Fatal("DeleteIf kept the matching entry")
	}
	if got := c.Evictions(); got != 0 {
		t.Fatalf("Evictions() = %d, want 0", got)
	}
	c.check(t)
}

// Under -race: concurrent hits, sets and deletes keep the bound, the index
// and the list consistent, and every hit returns the entry stored for its key.
func TestLRUGivenConcurrentUseThenBoundAndIndexHold(t *testing.T) {
	c := newLRU(50)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				k := fmt.Sprint((i * (w + 1)) % 200)
				switch i % 5 {
				case 0:
					c.Set(k, &entry{val: k})
				case 1:
					c.DeleteIf(k, func(e *entry) bool { return e.val == k })
				default:
					if e, ok := c.Get(k); ok && e.val != k {
						t.Errorf("Get(%s) = %v", k, e.val)
					}
				}
			}
		})
	}
	wg.Wait()
	c.check(t)
}
