// Package redisstate keeps pipe's durable state in Redis: checkpoints
// committed in one WATCH/MULTI/EXEC fenced by an epoch, dedupe claims by an
// atomic set-if-absent with TTL, and a GCRA rate limiter (redis_rate).
package redisstate

import (
	"fmt"
	"time"

	"github.com/go-redis/redis_rate/v10"
	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/pipe-dsl/pipe/state"
)

// Backend is the `state: {redis: {url, prefix}}` block. Opening a store
// creates a client and does no I/O.
type Backend struct {
	// URL is a redis:// or rediss:// URL; it may hold a password, so it is
	// never printed.
	URL string
	// Prefix starts every key pipe writes, e.g. "orders:".
	Prefix string
	// Interval is checkpoint_interval; 0 means state.DefaultCheckpointInterval.
	Interval time.Duration
}

var _ state.Backend = (*Backend)(nil)

// Kind returns "redis".
func (b *Backend) Kind() string { return "redis" }

// CheckpointInterval returns Interval or the default.
func (b *Backend) CheckpointInterval() time.Duration {
	if b.Interval <= 0 {
		return state.DefaultCheckpointInterval
	}
	return b.Interval
}

// client parses the URL; its error never repeats the URL (it may hold a
// password).
func (b *Backend) client() (*goredis.Client, error) {
	opts, err := goredis.ParseURL(b.URL)
	if err != nil {
		return nil, fmt.Errorf("state.redis.url: not a valid redis:// URL")
	}
	// Maintenance notifications (Redis Enterprise handoffs) start a
	// cleanup goroutine per client that outlives Close; pipe needs none.
	opts.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	// state.Guard retries with backoff and a breaker; the client fails
	// fast so the guard sees (and reports) an outage at once.
	opts.MaxRetries, opts.DialerRetries = -1, 1
	return goredis.NewClient(opts), nil
}

// CheckURL reports whether url would open; the error names no part of url.
func CheckURL(url string) error {
	_, err := (&Backend{URL: url}).client()
	return err
}

// OpenStore returns the checkpoint store.
func (b *Backend) OpenStore() (state.Store, error) {
	rdb, err := b.client()
	if err != nil {
		return nil, err
	}
	return &Store{rdb: rdb, prefix: b.Prefix}, nil
}

// OpenShared returns the dedupe claims.
func (b *Backend) OpenShared() (state.Shared, error) {
	rdb, err := b.client()
	if err != nil {
		return nil, err
	}
	return &Shared{rdb: rdb, prefix: b.Prefix}, nil
}

// OpenLimiter returns the GCRA limiter.
func (b *Backend) OpenLimiter() (state.Limiter, error) {
	rdb, err := b.client()
	if err != nil {
		return nil, err
	}
	return &Limiter{rdb: rdb, lim: redis_rate.NewLimiter(rdb), prefix: b.Prefix}, nil
}

// OpenLeases returns the partition leases.
func (b *Backend) OpenLeases() (state.Leases, error) {
	rdb, err := b.client()
	if err != nil {
		return nil, err
	}
	return &Leases{rdb: rdb, prefix: b.Prefix}, nil
}
