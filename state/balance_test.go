package state_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
	"github.com/pipe-dsl/pipe/state"
)

// replica is a balancer with its consumption recorded: running holds the
// partitions it consumes now, inflight those with messages unacked.
type replica struct {
	b        *state.Balancer
	running  map[int]bool
	inflight map[int]bool
}

func newReplica(leases state.Leases, clock *pipelinetest.FakeClock, owner string, n int) *replica {
	r := &replica{running: map[int]bool{}, inflight: map[int]bool{}}
	r.b = &state.Balancer{Leases: leases, Group: "nats:S/d", Owner: owner, Partitions: n, TTL: 3 * time.Second,
		Clock: clock, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Start: func(p int) { r.running[p] = true },
		Stop:  func(p int) { delete(r.running, p) },
		Idle:  func(p int) bool { return !r.inflight[p] },
	}
	return r
}

func (r *replica) consuming() []int {
	var ps []int
	for p := range r.running {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

// exclusive fails when a partition is consumed by two replicas, and
// returns how many are consumed at all.
func exclusive(t *testing.T, rs ...*replica) int {
	t.Helper()
	by := map[int]string{}
	for _, r := range rs {
		for p := range r.running {
			if o, dup := by[p]; dup {
				t.Fatalf("partition %d consumed by %s and %s", p, o, r.b.Owner)
			}
			by[p] = r.b.Owner
		}
	}
	return len(by)
}

func TestReplicasSplitPartitionsFairlyAndASurvivorTakesADeadOnesAfterTheTTL(t *testing.T) {
	ctx := context.Background()
	clock := pipelinetest.NewFakeClock(time.Unix(1000, 0))
	leases := &state.MemLeases{Clock: clock}
	a := newReplica(leases, clock, "a", 5)
	a.b.Round(ctx)
	if got := a.consuming(); !slices.Equal(got, []int{0, 1, 2, 3, 4}) {
		t.Fatalf("alone, a consumes %v, want all 5", got)
	}
	// b joins while a has messages in flight on every partition.
	for p := range 5 {
		a.inflight[p] = true
	}
	b := newReplica(leases, clock, "b", 5)
	for round := range 4 {
		b.b.Round(ctx)
		a.b.Round(ctx)
		exclusive(t, a, b)
		if round == 1 {
			// a stopped its surplus but holds it until it is acked.
			if len(a.running) != 3 || len(b.running) != 0 {
				t.Fatalf("draining: a consumes %v, b %v; want a 3, b none", a.consuming(), b.consuming())
			}
			clear(a.inflight)
		}
		clock.Advance(time.Second)
	}
	if len(a.running) != 3 || len(b.running) != 2 || exclusive(t, a, b) != 5 {
		t.Fatalf("after b joined: a consumes %v, b %v; want 3 and 2, all 5", a.consuming(), b.consuming())
	}
	// a dies: it renews nothing. b must not take a's partitions before
	// the TTL, and takes all of them once it passed.
	// (a last renewed 1s ago, so its leases run 2s more.)
	for range 3 {
		clock.Advance(600 * time.Millisecond)
		b.b.Round(ctx)
		if len(b.running) != 2 {
			t.Fatalf("before a's leases expired, b consumes %v", b.consuming())
		}
	}
	clock.Advance(300 * time.Millisecond)
	b.b.Round(ctx)
	if got := b.consuming(); !slices.Equal(got, []int{0, 1, 2, 3, 4}) {
		t.Fatalf("after a's TTL, b consumes %v, want all 5", got)
	}
}

func TestAReplicaWhoseLeaseWasTakenStopsAtItsNextRound(t *testing.T) {
	ctx := context.Background()
	clock := pipelinetest.NewFakeClock(time.Unix(1000, 0))
	leases := &state.MemLeases{Clock: clock}
	a := newReplica(leases, clock, "a", 2)
	a.b.Round(ctx)
	// a stalls (a long GC pause, a frozen VM) past its TTL; b takes over.
	clock.Advance(4 * time.Second)
	b := newReplica(leases, clock, "b", 2)
	b.b.Round(ctx)
	if len(b.running) != 2 {
		t.Fatalf("b consumes %v, want both", b.consuming())
	}
	// a wakes: its renewals are refused, so it stops both partitions.
	a.b.Round(ctx)
	if len(a.running) != 0 || exclusive(t, a, b) != 2 {
		t.Fatalf("a still consumes %v after losing its leases", a.consuming())
	}
	// With both live, b hands one back over the next rounds.
	for range 3 {
		clock.Advance(time.Second)
		a.b.Round(ctx)
		b.b.Round(ctx)
		exclusive(t, a, b)
	}
	if len(a.running) != 1 || len(b.running) != 1 {
		t.Fatalf("a consumes %v, b %v; want one each", a.consuming(), b.consuming())
	}
}

func TestReleaseAllHandsPartitionsOverAtOnce(t *testing.T) {
	ctx := context.Background()
	clock := pipelinetest.NewFakeClock(time.Unix(1000, 0))
	leases := &state.MemLeases{Clock: clock}
	rs := []*replica{newReplica(leases, clock, "a", 4), newReplica(leases, clock, "b", 4)}
	for range 4 {
		for _, r := range rs {
			r.b.Round(ctx)
		}
	}
	if n := exclusive(t, rs...); n != 4 || len(rs[0].running) != 2 {
		t.Fatalf("a consumes %v, b %v", rs[0].consuming(), rs[1].consuming())
	}
	rs[0].b.ReleaseAll(ctx) // a graceful stop: no waiting for the TTL
	rs[1].b.Round(ctx)
	if got := fmt.Sprint(rs[1].consuming()); got != "[0 1 2 3]" {
		t.Fatalf("after a released, b consumes %s", got)
	}
}

// failingLeases fails every call while down is set.
type failingLeases struct {
	state.Leases
	down bool
}

var errStore = fmt.Errorf("dial tcp: connection refused")

func (f *failingLeases) Acquire(ctx context.Context, g, n, o string, ttl time.Duration) (bool, error) {
	if f.down {
		return false, errStore
	}
	return f.Leases.Acquire(ctx, g, n, o, ttl)
}

func (f *failingLeases) Renew(ctx context.Context, g, n, o string, ttl time.Duration) (bool, error) {
	if f.down {
		return false, errStore
	}
	return f.Leases.Renew(ctx, g, n, o, ttl)
}

func (f *failingLeases) Holders(ctx context.Context, g string) (map[string]string, error) {
	if f.down {
		return nil, errStore
	}
	return f.Leases.Holders(ctx, g)
}

func TestWhileTheStoreIsDownAReplicaStopsItsPartitionsBeforeTheirLeasesCanExpire(t *testing.T) {
	ctx := context.Background()
	clock := pipelinetest.NewFakeClock(time.Unix(1000, 0))
	leases := &failingLeases{Leases: &state.MemLeases{Clock: clock}}
	a := newReplica(leases, clock, "a", 2)
	a.b.Round(ctx)
	leases.down = true
	// One round without renewal (1s of a 3s TTL): a keeps consuming.
	clock.Advance(time.Second)
	a.b.Round(ctx)
	if len(a.running) != 2 {
		t.Fatalf("after one failed renewal a consumes %v, want both still", a.consuming())
	}
	// TTL/2 without renewal: a stops, with a second of its lease to spare.
	clock.Advance(600 * time.Millisecond)
	a.b.Round(ctx)
	if len(a.running) != 0 {
		t.Fatalf("after TTL/2 unrenewed a consumes %v, want none", a.consuming())
	}
	if st := a.b.Stats(); st.Acquired != 2 || st.Lost != 2 || st.Held != 0 {
		t.Fatalf("stats %+v, want 2 acquired, 2 lost, none held", st)
	}
	// Back up: a takes them again.
	leases.down = false
	clock.Advance(time.Second)
	a.b.Round(ctx)
	if len(a.running) != 2 {
		t.Fatalf("with the store back a consumes %v, want both", a.consuming())
	}
}
