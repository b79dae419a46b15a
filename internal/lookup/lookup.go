// Package lookup provides a Loader: the keyed, cached, coalescing reads
// of the lookup stage from a Store (PostgreSQL, Redis, HTTP).
//
// A Get for a key is answered, in order of preference, from the cache (a
// hit: fresh positive or negative entry), from a round trip already under
// way for the key (singleflight), or from a new round trip that groups the
// keys arriving within MaxWait of each other (coalescing). A hot entry is
// refreshed in the background RefreshAhead before it expires; with
// ServeStale an expired entry answers when the store fails.
package lookup

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/pipe-dsl/pipe/pipeline"
)

// Request is one key to look up.
type Request struct {
	// Key identifies the key in the cache and in the round trip's result:
	// the text form of the lookup key.
	Key string
	// Arg is what the store is asked for: the key's value for PostgreSQL
	// (int64 or string), the Redis key, the URL for HTTP.
	Arg any
	// Resolve, if set, computes Arg; Get calls it (on the caller's
	// goroutine) only when the key must go to the store, so a cache hit
	// skips it. An error fails the Get.
	Resolve func() (any, error)
	// Trace is the context of the message asking; the round trip's span
	// links to its span.
	Trace context.Context
}

// Store fetches a group of keys in one round trip.
type Store interface {
	// Fetch returns the value of each requested key the store holds, by
	// Request.Key; a key absent from the map is missing. An error fails
	// the whole group. Fetch must be safe for concurrent use.
	Fetch(ctx context.Context, reqs []Request) (map[string]any, error)
	// Close releases the store's connections.
	Close() error
}

// Guard runs call under the stage's retry, breaker and timeout policies;
// nil runs it once as is.
type Guard func(ctx context.Context, call func(ctx context.Context) error) error

// Config configures a Loader. The zero value of each field turns its
// feature off.
type Config struct {
	// TTL is how long a found value is fresh; 0 turns the cache off.
	TTL time.Duration
	// NegativeTTL is how long a missing key is remembered as missing; 0
	// asks the store again every time.
	NegativeTTL time.Duration
	// MaxEntries bounds the cache (LRU; a hit that finds the cache busy
	// skips its recency update, see lru); it must be >= 1 when TTL > 0.
	MaxEntries int
	// RefreshAhead starts a background refresh of a found entry read
	// within RefreshAhead of its expiry.
	RefreshAhead time.Duration
	// ServeStale answers from an expired entry when the round trip fails.
	ServeStale bool
	// MaxKeys and MaxWait bound a coalesced group; MaxKeys <= 1 or
	// MaxWait 0 makes every key its own round trip.
	MaxKeys int
	MaxWait time.Duration
	// Clock nil means pipeline.SystemClock.
	Clock pipeline.Clock
	// Guard wraps every round trip (including its retries).
	Guard Guard
	// Store names the store in spans: "postgres", "redis" or "http".
	Store string
}

// Outcome says how a Get was answered; it is the cache outcome attribute
// on the message's span.
type Outcome string

const (
	Hit   Outcome = "hit"   // fresh cache entry
	Miss  Outcome = "miss"  // a round trip (joined or made)
	Stale Outcome = "stale" // expired entry served because the store failed
)

// Result is the answer to one Get.
type Result struct {
	Value   any
	Found   bool
	Outcome Outcome

	e *entry // the entry the result came from, for Encoded
}

// Stats are a Loader's counters since it was created.
type Stats struct {
	Hits, Misses, Stale, Evictions uint64
	RoundTrips, KeysFetched        uint64
	Refreshes, Failures            uint64
}

// A Loader answers Gets. It is safe for concurrent use. Close stops its
// background refreshes; it owns no other goroutine.
type Loader struct {
	cfg   Config
	store Store
	cache *lru // nil without a cache
	group singleflight.Group
	co    coalescer

	bg         context.Context // cancelled by Close; parent of refreshes
	stop       context.CancelFunc
	wg         sync.WaitGroup // background refreshes
	mu         sync.Mutex
	refreshing map[string]bool // keys with a refresh under way

	hits, misses, stale, roundTrips, keys, refreshes, failures atomic.Uint64
	waiting                                                    atomic.Int64 // callers attached to a flight, for tests
}

// entry is a cached answer. Entries are never changed once stored.
type entry struct {
	val     any
	found   bool
	expires time.Time
	enc     atomic.Pointer[[]byte] // val encoded once, by Result.Encoded
}

// New returns a Loader over store. It starts no goroutine and opens no
// connection.
func New(store Store, cfg Config) (*Loader, error) {
	if cfg.Clock == nil {
		cfg.Clock = pipeline.SystemClock
	}
	if cfg.TTL < 0 || cfg.NegativeTTL < 0 || cfg.RefreshAhead < 0 || cfg.MaxWait < 0 {
		return nil, errors.New("lookup: negative duration")
	}
	if cfg.RefreshAhead > 0 && cfg.RefreshAhead >= cfg.TTL {
		return nil, errors.New("lookup: refresh_ahead must be less than ttl")
	}
	l := &Loader{cfg: cfg, store: store, refreshing: map[string]bool{}}
	if cfg.TTL > 0 {
		if cfg.MaxEntries < 1 {
			return nil, errors.New("lookup: max_entries must be at least 1")
		}
		// The cache's own ttl is off: expiry differs between found and
		// missing keys, and serve_stale needs expired entries kept until
		// the LRU evicts them, so each entry carries its own.
		l.cache = newLRU(cfg.MaxEntries)
	}
	l.co = coalescer{maxKeys: max(cfg.MaxKeys, 1), maxWait: cfg.MaxWait, clock: cfg.Clock, fetch: l.roundTrip}
	l.bg, l.stop = context.WithCancel(context.Background())
	return l, nil
}

// Get returns the value stored for r.Key. A missing key is Found false and
// no error; err is the round trip's error (or ctx's) when no cached entry
// could answer instead.
func (l *Loader) Get(ctx context.Context, r Request) (Result, error) {
	var stale *entry
	if l.cache != nil {
		now := l.cfg.Clock.Now()
		if e, ok := l.cache.Get(r.Key); ok {
			if now.Before(e.expires) {
				l.hits.Add(1)
				if e.found && l.cfg.RefreshAhead > 0 && !now.Before(e.expires.Add(-l.cfg.RefreshAhead)) {
					if r, err := resolve(r); err == nil {
						l.refresh(r)
					}
				}
				return Result{Value: e.val, Found: e.found, Outcome: Hit, e: e}, nil
			}
			if l.cfg.ServeStale {
				stale = e
			} else {
				l.cache.DeleteIf(r.Key, func(v *entry) bool { return v == e })
			}
		}
	}
	l.misses.Add(1)
	r, err := resolve(r)
	if err != nil {
		return Result{}, err
	}
	ch := l.group.DoChan(r.Key, func() (any, error) { return l.load(ctx, r) })
	l.waiting.Add(1)
	var res singleflight.Result
	select {
	case res = <-ch:
		l.waiting.Add(-1)
	case <-ctx.Done():
		l.waiting.Add(-1)
		return Result{}, ctx.Err()
	}
	if res.Err != nil {
		if stale != nil {
			l.stale.Add(1)
			return Result{Value: stale.val, Found: stale.found, Outcome: Stale, e: stale}, nil
		}
		return Result{}, res.Err
	}
	e := res.Val.(*entry)
	return Result{Value: e.val, Found: e.found, Outcome: Miss, e: e}, nil
}

// resolve fills r.Arg from r.Resolve, if set.
func resolve(r Request) (Request, error) {
	if r.Resolve == nil {
		return r, nil
	}
	arg, err := r.Resolve()
	r.Arg, r.Resolve = arg, nil
	return r, err
}

// load is the one flight for r.Key: it checks the cache again (a flight
// that ended just before this one began has stored the answer), then asks
// the store through the coalescer and caches the answer.
func (l *Loader) load(ctx context.Context, r Request) (*entry, error) {
	if l.cache != nil {
		now := l.cfg.Clock.Now()
		if e, ok := l.cache.Get(r.Key); ok && now.Before(e.expires) {
			return e, nil
		}
	}
	v, found, err := l.co.get(ctx, r)
	if err != nil {
		return nil, err
	}
	e := &entry{val: v, found: found}
	l.store1(r.Key, e)
	return e, nil
}

// store1 caches e under key if the cache is on and e's kind is cached.
func (l *Loader) store1(key string, e *entry) {
	if l.cache == nil {
		return
	}
	ttl := l.cfg.TTL
	if !e.found {
		ttl = l.cfg.NegativeTTL
	}
	if ttl <= 0 {
		return
	}
	now := l.cfg.Clock.Now()
	e.expires = now.Add(ttl)
	l.cache.Set(key, e)
}

// refresh starts one background flight for r unless one is under way.
func (l *Loader) refresh(r Request) {
	l.mu.Lock()
	if l.refreshing[r.Key] || l.bg.Err() != nil {
		l.mu.Unlock()
		return
	}
	l.refreshing[r.Key] = true
	l.wg.Add(1)
	l.mu.Unlock()
	if r.Trace != nil {
		r.Trace = context.WithoutCancel(r.Trace)
	}
	go func() {
		defer l.wg.Done()
		defer func() {
			l.mu.Lock()
			delete(l.refreshing, r.Key)
			l.mu.Unlock()
		}()
		l.refreshes.Add(1)
		v, found, err := l.co.get(l.bg, r)
		if err == nil {
			l.store1(r.Key, &entry{val: v, found: found})
		}
	}()
}

// roundTrip fetches one group under the guard, counted and traced.
func (l *Loader) roundTrip(ctx context.Context, reqs []Request) (map[string]any, error) {
	l.roundTrips.Add(1)
	l.keys.Add(uint64(len(reqs)))
	ctx, span := startSpan(ctx, l.cfg.Store, reqs)
	defer span.End()
	var vals map[string]any
	call := func(ctx context.Context) error {
		var err error
		vals, err = l.store.Fetch(ctx, reqs)
		return err
	}
	var err error
	if l.cfg.Guard != nil {
		err = l.cfg.Guard(ctx, call)
	} else {
		err = call(ctx)
	}
	endSpan(span, len(vals), err)
	if err != nil {
		l.failures.Add(1)
		return nil, err
	}
	return vals, nil
}

// Stats returns the counters.
func (l *Loader) Stats() Stats {
	s := Stats{
		Hits: l.hits.Load(), Misses: l.misses.Load(), Stale: l.stale.Load(),
		RoundTrips: l.roundTrips.Load(), KeysFetched: l.keys.Load(),
		Refreshes: l.refreshes.Load(), Failures: l.failures.Load(),
	}
	if l.cache != nil {
		s.Evictions = l.cache.Evictions()
	}
	return s
}

// Close stops background refreshes, waits for them and closes the store.
func (l *Loader) Close() error {
	l.mu.Lock()
	l.stop()
	l.mu.Unlock()
	l.wg.Wait()
	return l.store.Close()
}
