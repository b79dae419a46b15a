package storetest

import (
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/state"
)

func openLeases(t *testing.T, b Backend, id string) state.Leases {
	t.Helper()
	l, err := b.Open(t, b.Target, id).OpenLeases()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// RunLeases runs the lease suite: leases are exclusive, owner-checked and
// expire on the store's clock.
func RunLeases(t *testing.T, b Backend) {
	ctx := t.Context()
	must := func(t *testing.T, ok bool, err error, want bool, what string) {
		t.Helper()
		if err != nil || ok != want {
			t.Fatalf("%s = %v, %v; want %v", what, ok, err, want)
		}
	}
	t.Run("a held lease is refused to another owner and extended for its own", func(t *testing.T) {
		l := openLeases(t, b, ID(t))
		ok, err := l.Acquire(ctx, "g", "part/0", "a", time.Minute)
		must(t, ok, err, true, "Acquire by a")
		ok, err = l.Acquire(ctx, "g", "part/0", "b", time.Minute)
		must(t, ok, err, false, "Acquire by b of a's lease")
		ok, err = l.Acquire(ctx, "g", "part/0", "a", time.Minute)
		must(t, ok, err, true, "Acquire by a again")
		ok, err = l.Acquire(ctx, "other", "part/0", "b", time.Minute)
		must(t, ok, err, true, "Acquire by b in another group")
		got, err := l.Holders(ctx, "g")
		if want := map[string]string{"part/0": "a"}; err != nil || !maps.Equal(got, want) {
			t.Fatalf("Holders = %v, %v; want %v", got, err, want)
		}
	})
	t.Run("renew and release by a non-owner are refused", func(t *testing.T) {
		l := openLeases(t, b, ID(t))
		ok, err := l.Acquire(ctx, "g", "part/1", "a", time.Minute)
		must(t, ok, err, true, "Acquire by a")
		ok, err = l.Renew(ctx, "g", "part/1", "b", time.Minute)
		must(t, ok, err, false, "Renew by b")
		ok, err = l.Renew(ctx, "g", "part/2", "a", time.Minute)
		must(t, ok, err, false, "Renew of a lease never taken")
		if err := l.Release(ctx, "g", "part/1", "b"); err != nil {
			t.Fatal(err)
		}
		ok, err = l.Acquire(ctx, "g", "part/1", "b", time.Minute)
		must(t, ok, err, false, "Acquire by b after b's release")
		ok, err = l.Renew(ctx, "g", "part/1", "a", time.Minute)
		must(t, ok, err, true, "Renew by a")
		if err := l.Release(ctx, "g", "part/1", "a"); err != nil {
			t.Fatal(err)
		}
		ok, err = l.Renew(ctx, "g", "part/1", "a", time.Minute)
		must(t, ok, err, false, "Renew by a after its release")
		ok, err = l.Acquire(ctx, "g", "part/1", "b", time.Minute)
		must(t, ok, err, true, "Acquire by b after a's release")
	})
	t.Run("an expired lease passes to another owner and its old owner cannot renew it", func(t *testing.T) {
		l := openLeases(t, b, ID(t))
		const ttl = 300 * time.Millisecond
		start := time.Now()
		ok, err := l.Acquire(ctx, "g", "part/0", "a", ttl)
		must(t, ok, err, true, "Acquire by a")
		// Wait on the store's clock: b's acquire succeeds once it expired.
		for {
			ok, err = l.Acquire(ctx, "g", "part/0", "b", time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				break
			}
			if time.Since(start) > 10*time.Second {
				t.Fatal("the lease never expired")
			}
			time.Sleep(20 * time.Millisecond)
		}
		if took := time.Since(start); took < ttl-50*time.Millisecond {
			t.Fatalf("b took the lease after %v, before its ttl %v", took, ttl)
		}
		ok, err = l.Renew(ctx, "g", "part/0", "a", time.Minute)
		must(t, ok, err, false, "Renew by the expired owner")
		got, err := l.Holders(ctx, "g")
		if want := map[string]string{"part/0": "b"}; err != nil || !maps.Equal(got, want) {
			t.Fatalf("Holders = %v, %v; want %v", got, err, want)
		}
	})
	t.Run("concurrent acquires of one free lease have one winner", func(t *testing.T) {
		id := ID(t)
		const n = 8
		ls := make([]state.Leases, n)
		for i := range ls {
			ls[i] = openLeases(t, b, id)
		}
		var wg sync.WaitGroup
		won := make([]bool, n)
		for i := range n {
			wg.Go(func() {
				ok, err := ls[i].Acquire(ctx, "g", "part/0", string(rune('a'+i)), time.Minute)
				if err != nil {
					t.Error(err)
				}
				won[i] = ok
			})
		}
		wg.Wait()
		winners := 0
		for _, w := range won {
			if w {
				winners++
			}
		}
		if winners != 1 {
			t.Fatalf("%d owners acquired one lease, want 1", winners)
		}
	})
}
