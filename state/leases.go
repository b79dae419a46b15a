package state

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/pipe-dsl/pipe/pipeline"
)

// Leases are expiring, owner-tagged locks on names within a group, kept
// in the store so that replicas can divide work (JetStream partitions)
// without a coordinator of their own. Expiry runs on the store's clock,
// so replicas' clocks need not agree. Every change is owner-checked: a
// replica that lost a lease (it expired, another took it) can neither
// renew nor release it. Implementations are safe for concurrent use.
type Leases interface {
	// Acquire takes name for owner for ttl if it is free, expired, or
	// already owner's (then it is extended); it reports whether owner
	// holds it afterwards.
	Acquire(ctx context.Context, group, name, owner string, ttl time.Duration) (bool, error)
	// Renew extends owner's unexpired lease on name to ttl from now. It
	// reports false, changing nothing, when owner does not hold it (any
	// more): the lease may have passed to another owner.
	Renew(ctx context.Context, group, name, owner string, ttl time.Duration) (bool, error)
	// Release frees name if owner holds it; otherwise it does nothing.
	Release(ctx context.Context, group, name, owner string) error
	// Holders maps every unexpired lease of group to its owner.
	Holders(ctx context.Context, group string) (map[string]string, error)
	Close() error
}

// MemLeases is an in-process Leases on a Clock, for tests of what is
// built on leases (its expiry follows the clock, so a fake clock drives
// it).
type MemLeases struct {
	Clock pipeline.Clock

	mu sync.Mutex
	m  map[string]memLease
}

type memLease struct {
	owner string
	until time.Time
}

var _ Leases = (*MemLeases)(nil)

func (l *MemLeases) live(key string) (memLease, bool) {
	v, ok := l.m[key]
	return v, ok && l.Clock.Now().Before(v.until)
}

// Acquire implements Leases.
func (l *MemLeases) Acquire(_ context.Context, group, name, owner string, ttl time.Duration) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]memLease{}
	}
	if v, ok := l.live(group + "\x00" + name); ok && v.owner != owner {
		return false, nil
	}
	l.m[group+"\x00"+name] = memLease{owner, l.Clock.Now().Add(ttl)}
	return true, nil
}

// Renew implements Leases.
func (l *MemLeases) Renew(_ context.Context, group, name, owner string, ttl time.Duration) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if v, ok := l.live(group + "\x00" + name); !ok || v.owner != owner {
		return false, nil
	}
	l.m[group+"\x00"+name] = memLease{owner, l.Clock.Now().Add(ttl)}
	return true, nil
}

// Release implements Leases.
func (l *MemLeases) Release(_ context.Context, group, name, owner string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if v, ok := l.m[group+"\x00"+name]; ok && v.owner == owner {
		delete(l.m, group+"\x00"+name)
	}
	return nil
}

// Holders implements Leases.
func (l *MemLeases) Holders(_ context.Context, group string) (map[string]string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]string{}
	for k := range l.m {
		if g, name, _ := strings.Cut(k, "\x00"); g == group {
			if v, ok := l.live(k); ok {
				out[name] = v.owner
			}
		}
	}
	return out, nil
}

// Close implements Leases.
func (l *MemLeases) Close() error { return nil }
