package state

import (
	"context"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pipe-dsl/pipe/pipeline"
)

// Balancer divides partitions 0..Partitions-1 of Group among the live
// replicas through Leases, so that each partition is consumed by at most
// one replica at a time and every partition by some replica:
//
//   - each replica holds a membership lease ("member/<owner>") and renews
//     it every round, so the live replicas are the unexpired members;
//   - a replica holds one lease per partition it consumes ("part/<p>"),
//     renewed every round (TTL/3); a renewal refused means another owner
//     may have it, so consumption stops at once;
//   - each round a replica takes free partitions up to its fair share,
//     ceil(partitions / live replicas), and hands back its surplus when a
//     replica joined: it stops consuming a surplus partition, waits until
//     the partition has nothing in flight (at most TTL), then releases it;
//   - a replica that dies renews nothing: its leases expire after TTL and
//     the others take its partitions (takeover time TTL plus one round).
//
// A Balancer is driven by Run (or by Round, in tests); Held, Stats and
// ReleaseAll may be called from any goroutine.
type Balancer struct {
	Leases     Leases
	Group      string
	Owner      string
	Partitions int
	TTL        time.Duration
	Clock      pipeline.Clock
	Logger     *slog.Logger
	// Start begins consuming partition p (the lease is held).
	Start func(p int)
	// Stop ends consuming p; it need not wait for messages in flight.
	Stop func(p int)
	// Idle reports whether p has no message in flight (read, not yet
	// acked), so its lease can be handed over without redeliveries.
	Idle func(p int) bool

	mu      sync.Mutex // one round at a time; guards held and closed
	held    map[int]*lease
	closed  bool // released: play no more rounds
	failing bool // a store error was logged, its recovery not yet
	// Counters, read by Stats without waiting for a round.
	nHeld, acquired, lost, handedOver atomic.Int64
}

// BalancerStats counts what a Balancer did.
type BalancerStats struct {
	// Held is the number of partitions consumed now.
	Held int
	// Acquired, Lost and HandedOver count partitions taken, stopped
	// because their lease was lost, and handed back to a joining replica.
	Acquired, Lost, HandedOver int64
}

// Stats returns the counters; it never waits for a round.
func (b *Balancer) Stats() BalancerStats {
	return BalancerStats{Held: int(b.nHeld.Load()), Acquired: b.acquired.Load(), Lost: b.lost.Load(), HandedOver: b.handedOver.Load()}
}

// Report is the balancer's figures for its node's Report.
func (b *Balancer) Report() []pipeline.Figure {
	st := b.Stats()
	return []pipeline.Figure{
		{Name: "partitions_held", Help: "Partitions this replica consumes now.", Kind: pipeline.Gauge, Value: float64(st.Held)},
		{Name: "partitions_acquired", Help: "Partition leases this replica took.", Value: float64(st.Acquired)},
		{Name: "partitions_lost", Help: "Partitions stopped because their lease was lost (expired or taken).", Value: float64(st.Lost)},
		{Name: "partitions_handed_over", Help: "Partitions handed back so a joining replica gets its share.", Value: float64(st.HandedOver)},
	}
}

type lease struct {
	renewed  time.Time // last successful acquire or renew
	draining bool      // surplus: stopped, released once idle
	since    time.Time // draining since
}

// MemberPrefix and PartPrefix name the leases in a balancer's group.
const (
	MemberPrefix = "member/"
	PartPrefix   = "part/"
)

// Held returns the partitions this replica consumes now (not draining),
// in order.
func (b *Balancer) Held() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.active()
}

func (b *Balancer) active() []int {
	var ps []int
	for p, l := range b.held {
		if !l.draining {
			ps = append(ps, p)
		}
	}
	slices.Sort(ps)
	return ps
}

// Run plays a round every TTL/3 until ctx ends, then stops every
// partition. It does not release the leases: ReleaseAll does, once what
// was read is resolved.
func (b *Balancer) Run(ctx context.Context) {
	defer func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		for p, l := range b.held {
			if !l.draining {
				b.Stop(p)
			}
		}
	}()
	for {
		b.Round(ctx)
		t := b.Clock.NewTimer(b.TTL / 3)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
	}
}

// Round renews what this replica holds, drops what it lost, and moves it
// towards its fair share. Store errors are logged; a lease not renewed
// for TTL/2 is given up before it can expire under a running consumer.
func (b *Balancer) Round(ctx context.Context) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	if b.held == nil {
		b.held = map[int]*lease{}
	}
	var storeErr error
	defer func() { b.nHeld.Store(int64(len(b.active()))) }()
	now := b.Clock.Now()
	defer func(stopping func() error) {
		if stopping() == nil || storeErr == nil { // not an error of the stop
			b.logStore(storeErr)
		}
	}(ctx.Err)
	ctx, cancel := context.WithTimeout(ctx, b.TTL/3)
	defer cancel()
	member, err := b.Leases.Acquire(ctx, b.Group, MemberPrefix+b.Owner, b.Owner, b.TTL)
	if err != nil {
		storeErr = err
	}
	for _, p := range b.sorted() {
		l := b.held[p]
		ok, err := b.Leases.Renew(ctx, b.Group, part(p), b.Owner, b.TTL)
		if err != nil {
			storeErr = err
		}
		switch {
		case err == nil && ok:
			l.renewed = now
			continue
		case err != nil && now.Sub(l.renewed) < b.TTL/2:
			continue // try again next round; the lease still runs
		}
		b.Logger.Warn("lease lost; partition stopped", "group", b.Group, "partition", p, "err", err)
		if !l.draining {
			b.Stop(p)
			b.lost.Add(1)
		}
		delete(b.held, p)
	}
	holders, err := b.Leases.Holders(ctx, b.Group)
	if err != nil {
		storeErr = err
		return
	}
	var members []string
	for name, owner := range holders {
		if strings.HasPrefix(name, MemberPrefix) {
			members = append(members, owner)
		}
	}
	if !member || !slices.Contains(members, b.Owner) {
		return // not a live member: take nothing new
	}
	slices.Sort(members)
	fair := (b.Partitions + len(members) - 1) / len(members)
	active := len(b.active())
	// Hand back the surplus, highest partitions first.
	for _, p := range slices.Backward(b.active()) {
		if active <= fair {
			break
		}
		b.Stop(p)
		b.held[p].draining, b.held[p].since = true, now
		b.handedOver.Add(1)
		active--
		b.Logger.Info("handing a partition over to a new replica", "group", b.Group, "partition", p, "replicas", len(members))
	}
	for _, p := range b.sorted() {
		if l := b.held[p]; l.draining && (b.Idle(p) || now.Sub(l.since) >= b.TTL) {
			if err := b.Leases.Release(ctx, b.Group, part(p), b.Owner); err != nil {
				storeErr = err // the lease will expire
			}
			delete(b.held, p)
		}
	}
	// Take free partitions up to the fair share, starting at this
	// replica's slice so that replicas joining together rarely collide.
	start := slices.Index(members, b.Owner) * b.Partitions / len(members)
	for i := 0; i < b.Partitions && active < fair; i++ {
		p := (start + i) % b.Partitions
		if owner, taken := holders[part(p)]; taken && owner != b.Owner || b.held[p] != nil {
			continue
		}
		ok, err := b.Leases.Acquire(ctx, b.Group, part(p), b.Owner, b.TTL)
		if err != nil {
			storeErr = err
		}
		if err != nil || !ok {
			continue
		}
		b.held[p] = &lease{renewed: now}
		b.acquired.Add(1)
		active++
		b.Logger.Info("partition acquired", "group", b.Group, "partition", p, "replicas", len(members))
		b.Start(p)
	}
}

// logStore logs a store outage once, and its end.
func (b *Balancer) logStore(err error) {
	switch {
	case err != nil && !b.failing:
		b.failing = true
		b.Logger.Warn("lease store unreachable; holding what is held until lease_ttl/2 without renewal, taking nothing new", "group", b.Group, "err", err)
	case err == nil && b.failing:
		b.failing = false
		b.Logger.Info("lease store reachable again", "group", b.Group)
	}
}

// ReleaseAll releases every lease this replica holds, its membership
// included, so the others take its partitions at once instead of after
// TTL; no round runs after it. Call it once what the partitions read is
// resolved (Run has stopped them).
func (b *Balancer) ReleaseAll(ctx context.Context) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for p := range b.held {
		_ = b.Leases.Release(ctx, b.Group, part(p), b.Owner)
	}
	b.held = nil
	b.nHeld.Store(0)
	_ = b.Leases.Release(ctx, b.Group, MemberPrefix+b.Owner, b.Owner)
}

func (b *Balancer) sorted() []int {
	ps := make([]int, 0, len(b.held))
	for p := range b.held {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

func part(p int) string { return PartPrefix + strconv.Itoa(p) }
