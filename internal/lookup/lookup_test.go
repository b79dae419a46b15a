package lookup

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeStore answers from vals, records each group it was asked for, and
// fails while err is set. With gate set, each Fetch waits for a receive.
type fakeStore struct {
	mu     sync.Mutex
	vals   map[string]any
	err    error
	groups [][]string
	gate   chan struct{}
}

func (s *fakeStore) Fetch(ctx context.Context, reqs []Request) (map[string]any, error) {
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, len(reqs))
	out := map[string]any{}
	for i, r := range reqs {
		keys[i] = r.Key
		if v, ok := s.vals[r.Key]; ok {
			out[r.Key] = v
		}
	}
	s.groups = append(s.groups, keys)
	if s.err != nil {
		return nil, s.err
	}
	return out, nil
}

func (s *fakeStore) Close() error { return nil }

func (s *fakeStore) trips() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.groups)
}

func (s *fakeStore) set(key string, v any, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if key != "" {
		s.vals[key] = v
	}
	s.err = err
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newLoader(t *testing.T, s Store, cfg Config) *Loader {
	t.Helper()
	l, err := New(s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// get is Get for a key whose Arg is itself; it fails the test on error.
func get(t *testing.T, l *Loader, key string) Result {
	t.Helper()
	r, err := l.Get(context.Background(), Request{Key: key, Arg: key})
	if err != nil {
		t.Fatalf("Get(%s): %v", key, err)
	}
	return r
}

func TestGivenOneKeyWhenManyAskAtOnceThenOneRoundTrip(t *testing.T) {
	s := &fakeStore{vals: map[string]any{"k": "v"}, gate: make(chan struct{})}
	l := newLoader(t, s, Config{})
	const n = 1000
	var wg sync.WaitGroup
	results := make([]Result, n)
	for i := range n {
		wg.Go(func() { results[i] = get(t, l, "k") })
	}
	// Let the one round trip through once every caller is attached to
	// its flight.
	for l.waiting.Load() < n {
		runtime.Gosched()
	}
	close(s.gate)
	wg.Wait()
	if got := s.trips(); got != 1 {
		t.Fatalf("round trips = %d, want 1", got)
	}
	for i, r := range results {
		if !r.Found || r.Value != "v" {
			t.Fatalf("result %d = %+v, want found v", i, r)
		}
	}
}

func TestGivenMaxKeysWhenThatManyKeysArriveThenOneGroupedRoundTrip(t *testing.T) {
	clock := pipelinetest.NewFakeClock(t0)
	s := &fakeStore{vals: map[string]any{"a": 1, "b": 2, "c": 3}}
	l := newLoader(t, s, Config{MaxKeys: 3, MaxWait: time.Hour, Clock: clock})
	var wg sync.WaitGroup
	got := make([]Result, 4)
	for i, k := range []string{"a", "b", "c", "d"} {
		wg.Go(func() { got[i] = get(t, l, k) })
	}
	// The fourth key starts a second group that only max_wait flushes.
	waitJoined(l, 4)
	clock.WaitTimers(1)
	clock.Advance(time.Hour)
	wg.Wait()
	if len(s.groups) != 2 {
		t.Fatalf("groups = %v, want 2", s.groups)
	}
	sizes := []int{len(s.groups[0]), len(s.groups[1])}
	slices.Sort(sizes)
	if !slices.Equal(sizes, []int{1, 3}) {
		t.Fatalf("group sizes = %v, want [1 3]", sizes)
	}
	for i, k := range []string{"a", "b", "c"} {
		if !got[i].Found || got[i].Value != s.vals[k] {
			t.Errorf("%s = %+v, want %v", k, got[i], s.vals[k])
		}
	}
	if got[3].Found {
		t.Errorf("d found = %+v, want missing", got[3])
	}
}

// waitJoined waits until n keys have joined groups.
func waitJoined(l *Loader, n int) {
	for {
		l.co.mu.Lock()
		k := l.co.joined
		l.co.mu.Unlock()
		if k >= n {
			return
		}
		runtime.Gosched()
	}
}

func TestGivenMaxWaitWhenItPassesThenThePartialGroupGoes(t *testing.T) {
	clock := pipelinetest.NewFakeClock(t0)
	s := &fakeStore{vals: map[string]any{"a": 1, "b": 2}}
	l := newLoader(t, s, Config{MaxKeys: 10, MaxWait: 2 * time.Millisecond, Clock: clock})
	var wg sync.WaitGroup
	for _, k := range []string{"a", "b"} {
		wg.Go(func() { get(t, l, k) })
	}
	waitJoined(l, 2)
	clock.WaitTimers(1)
	if s.trips() != 0 {
		t.Fatal("round trip before max_wait")
	}
	clock.Advance(2 * time.Millisecond)
	wg.Wait()
	if len(s.groups) != 1 || len(s.groups[0]) != 2 {
		t.Fatalf("groups = %v, want one of 2 keys", s.groups)
	}
}

func TestGivenCacheWhenKeyIsReadAgainThenHitUntilTTL(t *testing.T) {
	clock := pipelinetest.NewFakeClock(t0)
	s := &fakeStore{vals: map[string]any{"k": "v1"}}
	l := newLoader(t, s, Config{TTL: time.Minute, MaxEntries: 10, Clock: clock})
	if r := get(t, l, "k"); r.Outcome != Miss || r.Value != "v1" {
		t.Fatalf("first = %+v, want miss v1", r)
	}
	s.set("k", "v2", nil)
	clock.Advance(time.Minute - time.Nanosecond)
	if r := get(t, l, "k"); r.Outcome != Hit || r.Value != "v1" {
		t.Fatalf("before ttl = %+v, want hit v1", r)
	}
	clock.Advance(time.Nanosecond)
	if r := get(t, l, "k"); r.Outcome != Miss || r.Value != "v2" {
		t.Fatalf("at ttl = %+v, want miss v2", r)
	}
	if st := l.Stats(); st.Hits != 1 || st.Misses != 2 || st.RoundTrips != 2 {
		t.Fatalf("stats = %+v, want 1 hit, 2 misses, 2 round trips", st)
	}
}

func TestGivenNegativeTTLWhenKeyIsMissingThenMissIsRememberedForNegativeTTL(t *testing.T) {
	clock := pipelinetest.NewFakeClock(t0)
	s := &fakeStore{vals: map[string]any{}}
	l := newLoader(t, s, Config{TTL: time.Hour, NegativeTTL: 30 * time.Second, MaxEntries: 10, Clock: clock})
	get(t, l, "k")
	s.set("k", "now here", nil)
	clock.Advance(29 * time.Second)
	if r := get(t, l, "k"); r.Found || r.Outcome != Hit {
		t.Fatalf("within negative_ttl = %+v, want a cached miss", r)
	}
	clock.Advance(time.Second)
	if r := get(t, l, "k"); !r.Found || r.Value != "now here" {
		t.Fatalf("after negative_ttl = %+v, want found", r)
	}
	if s.trips() != 2 {
		t.Fatalf("round trips = %d, want 2", s.trips())
	}
}

func TestGivenNoNegativeTTLWhenKeyIsMissingThenEveryReadAsks(t *testing.T) {
	s := &fakeStore{vals: map[string]any{}}
	l := newLoader(t, s, Config{TTL: time.Hour, MaxEntries: 10})
	get(t, l, "k")
	get(t, l, "k")
	if s.trips() != 2 {
		t.Fatalf("round trips = %d, want 2", s.trips())
	}
}

func TestGivenRefreshAheadWhenHotKeyNearsExpiryThenItIsRefreshedInTheBackground(t *testing.T) {
	clock := pipelinetest.NewFakeClock(t0)
	s := &fakeStore{vals: map[string]any{"k": "v1"}}
	l := newLoader(t, s, Config{TTL: time.Minute, RefreshAhead: 10 * time.Second, MaxEntries: 10, Clock: clock})
	get(t, l, "k")
	s.set("k", "v2", nil)
	clock.Advance(49 * time.Second) // not yet within refresh_ahead
	if r := get(t, l, "k"); r.Value != "v1" || s.trips() != 1 {
		t.Fatalf("at 49s = %+v after %d trips, want v1 with no refresh", r, s.trips())
	}
	clock.Advance(time.Second) // 50s: within 10s of expiry
	if r := get(t, l, "k"); r.Outcome != Hit || r.Value != "v1" {
		t.Fatalf("at 50s = %+v, want the cached v1 at once", r)
	}
	l.wg.Wait()                     // the refresh
	clock.Advance(30 * time.Second) // past the first entry's expiry
	if r := get(t, l, "k"); r.Outcome != Hit || r.Value != "v2" {
		t.Fatalf("at 80s = %+v, want a hit on the refreshed v2", r)
	}
	if st := l.Stats(); st.Refreshes != 1 || st.RoundTrips != 2 {
		t.Fatalf("stats = %+v, want 1 refresh, 2 round trips", st)
	}
}

func TestGivenServeStaleWhenStoreFailsThenExpiredEntryAnswers(t *testing.T) {
	clock := pipelinetest.NewFakeClock(t0)
	s := &fakeStore{vals: map[string]any{"k": "v1"}}
	down := errors.New("store down")
	for _, serve := range []bool{true, false} {
		t.Run(fmt.Sprint("serve_stale=", serve), func(t *testing.T) {
			s.set("", nil, nil)
			l := newLoader(t, s, Config{TTL: time.Minute, MaxEntries: 10, ServeStale: serve, Clock: clock})
			get(t, l, "k")
			s.set("", nil, down)
			clock.Advance(time.Minute)
			r, err := l.Get(context.Background(), Request{Key: "k"})
			if serve {
				if err != nil || r.Outcome != Stale || r.Value != "v1" {
					t.Fatalf("Get = %+v, %v; want stale v1", r, err)
				}
				if l.Stats().Stale != 1 {
					t.Fatalf("stale count = %d, want 1", l.Stats().Stale)
				}
			} else if !errors.Is(err, down) {
				t.Fatalf("Get = %+v, %v; want %v", r, err, down)
			}
		})
	}
}

func TestGivenMaxEntriesWhenMoreKeysArriveThenLeastRecentlyUsedIsEvicted(t *testing.T) {
	s := &fakeStore{vals: map[string]any{"a": 1, "b": 2, "c": 3}}
	l := newLoader(t, s, Config{TTL: time.Hour, MaxEntries: 2})
	get(t, l, "a")
	get(t, l, "b")
	get(t, l, "a") // b is now least recently used
	get(t, l, "c")
	if st := l.Stats(); st.Evictions != 1 {
		t.Fatalf("evictions = %d, want 1", st.Evictions)
	}
	if r := get(t, l, "a"); r.Outcome != Hit {
		t.Fatalf("a = %+v, want hit", r)
	}
	if r := get(t, l, "b"); r.Outcome != Miss {
		t.Fatalf("b = %+v, want miss (evicted)", r)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, c := range []Config{
		{TTL: time.Minute, RefreshAhead: time.Minute, MaxEntries: 1},
		{TTL: time.Minute},
		{TTL: -1},
	} {
		if _, err := New(&fakeStore{}, c); err == nil {
			t.Errorf("New(%+v) = nil error", c)
		}
	}
}
