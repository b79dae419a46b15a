package redisstate

import (
	"context"
	"fmt"
	"time"

	"github.com/go-redis/redis_rate/v10"
	goredis "github.com/redis/go-redis/v9"

	"github.com/pipe-dsl/pipe/state"
)

// claim sets KEYS[1] to ARGV[1] (with PX ARGV[2] when positive) unless it
// holds another value; 1 when it holds ARGV[1] afterwards.
var claim = goredis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then
  if tonumber(ARGV[2]) > 0 then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  else
    redis.call('SET', KEYS[1], ARGV[1])
  end
  return 1
end
if v == ARGV[1] then return 1 end
return 0`)

// release deletes KEYS[1] if it holds ARGV[1].
var release = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

// Shared holds dedupe claims as plain keys {prefix}dedupe:<key> whose value
// is the claiming message's token and whose TTL is the dedupe ttl.
type Shared struct {
	rdb    *goredis.Client
	prefix string
}

var _ state.Shared = (*Shared)(nil)

// Claim runs the claim script: one atomic step on the server.
func (s *Shared) Claim(ctx context.Context, key, token string, ttl time.Duration) (bool, error) {
	n, err := claim.Run(ctx, s.rdb, []string{s.prefix + "dedupe:" + key}, token, ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("dedupe claim: %w", err)
	}
	return n == 1, nil
}

// Release forgets key if token still holds it.
func (s *Shared) Release(ctx context.Context, key, token string) error {
	if err := release.Run(ctx, s.rdb, []string{s.prefix + "dedupe:" + key}, token).Err(); err != nil {
		return fmt.Errorf("dedupe release: %w", err)
	}
	return nil
}

// Close closes the client.
func (s *Shared) Close() error { return s.rdb.Close() }

// Limiter is redis_rate's GCRA: the theoretical arrival time of each key
// lives in Redis and advances on the server's clock, so every replica
// shares one timeline. Keys are rate:{prefix}throttle:<key>.
type Limiter struct {
	rdb    *goredis.Client
	lim    *redis_rate.Limiter
	prefix string
}

var _ state.Limiter = (*Limiter)(nil)

// Allow admits one event if key's timeline permits it. rate is events per
// second (fractions allowed): the emission interval is 1s/rate.
func (l *Limiter) Allow(ctx context.Context, key string, rate float64, burst int) (bool, time.Duration, error) {
	lim := redis_rate.Limit{Rate: 1, Burst: burst, Period: time.Duration(float64(time.Second) / rate)}
	res, err := l.lim.Allow(ctx, l.prefix+"throttle:"+key, lim)
	if err != nil {
		return false, 0, fmt.Errorf("throttle: %w", err)
	}
	return res.Allowed > 0, res.RetryAfter, nil
}

// Close closes the client.
func (l *Limiter) Close() error { return l.rdb.Close() }
