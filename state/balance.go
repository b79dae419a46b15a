package state

import (
	"context"
	"log/slog"
	"slices"
	"strconv"
	"strings"
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
// A Balancer is driven by Run (or by Round, in tests) from one goroutine.
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

	held map[int]*lease
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
	if b.held == nil {
		b.held = map[int]*lease{}
	}
	now := b.Clock.Now()
	ctx, cancel := context.WithTimeout(ctx, b.TTL/3)
	defer cancel()
	member, err := b.Leases.Acquire(ctx, b.Group, MemberPrefix+b.Owner, b.Owner, b.TTL)
	if err != nil {
		b.Logger.Warn("lease store: heartbeat failed", "group", b.Group, "err", err)
	}
	for _, p := range b.sorted() {
		l := b.held[p]
		ok, err := b.Leases.Renew(ctx, b.Group, part(p), b.Owner, b.TTL)
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
		}
		delete(b.held, p)
	}
	holders, err := b.Leases.Holders(ctx, b.Group)
	if err != nil {
		b.Logger.Warn("lease store: listing leases failed", "group", b.Group, "err", err)
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
	active := len(b.Held())
	// Hand back the surplus, highest partitions first.
	for _, p := range slices.Backward(b.Held()) {
		if active <= fair {
			break
		}
		b.Stop(p)
		b.held[p].draining, b.held[p].since = true, now
		active--
		b.Logger.Info("handing a partition over to a new replica", "group", b.Group, "partition", p, "replicas", len(members))
	}
	for _, p := range b.sorted() {
		if l := b.held[p]; l.draining && (b.Idle(p) || now.Sub(l.since) >= b.TTL) {
			if err := b.Leases.Release(ctx, b.Group, part(p), b.Owner); err != nil {
				b.Logger.Warn("lease store: release failed; the lease will expire", "group", b.Group, "partition", p, "err", err)
			}
			delete(b.held, p)
		}
	}
	// Take free partitions up to the fair share, starting at this
	// replica's slice so that replicas joining together rarely collide.
	start := slices.Index(members, b.Owner) * b.Partitions / len(members)
	for i := 0; i < b.Partitions && active < fair; i++ {
		p := (start + i) % b.Partitions
		if _, taken := holders[part(p)]; taken || b.held[p] != nil {
			continue
		}
		ok, err := b.Leases.Acquire(ctx, b.Group, part(p), b.Owner, b.TTL)
		if err != nil || !ok {
			continue
		}
		b.held[p] = &lease{renewed: now}
		active++
		b.Logger.Info("partition acquired", "group", b.Group, "partition", p, "replicas", len(members))
		b.Start(p)
	}
}

// ReleaseAll releases every lease this replica holds, its membership
// included, so the others take its partitions at once instead of after
// TTL. Call it after Run returned.
func (b *Balancer) ReleaseAll(ctx context.Context) {
	for p := range b.held {
		_ = b.Leases.Release(ctx, b.Group, part(p), b.Owner)
	}
	b.held = nil
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
