package redisstate

import (
	"context"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/pipe-dsl/pipe/state"
)

// A group's leases live in one hash, {prefix}lease:<group>, field name,
// value "<expiry ms>|<owner>", the expiry on the server's clock (TIME).
// Each operation is one script, so one atomic step; listing sweeps expired
// leases. The hash itself expires once its longest lease has.

const leaseLib = `
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function get(key, name)
  local v = redis.call('HGET', key, name)
  if not v then return nil, 0 end
  local sep = string.find(v, '|', 1, true)
  return string.sub(v, sep + 1), tonumber(string.sub(v, 1, sep - 1))
end
local function put(key, name, owner, ttl)
  redis.call('HSET', key, name, (now() + ttl) .. '|' .. owner)
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
end
`

// acquireLease: KEYS[1] hash, ARGV name, owner, ttl ms, renew ("1": only
// extend owner's unexpired lease). 1 when owner holds it afterwards.
var acquireLease = goredis.NewScript(leaseLib + `
local owner, exp = get(KEYS[1], ARGV[1])
local live = owner and exp > now()
local ttl = tonumber(ARGV[3])
if ARGV[4] == '1' then
  if not live or owner ~= ARGV[2] then return 0 end
elseif live and owner ~= ARGV[2] then
  return 0
end
put(KEYS[1], ARGV[1], ARGV[2], ttl)
return 1`)

var releaseLease = goredis.NewScript(leaseLib + `
local owner = get(KEYS[1], ARGV[1])
if owner == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0`)

var holders = goredis.NewScript(leaseLib + `
local out, t = {}, now()
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local v = all[i + 1]
  local sep = string.find(v, '|', 1, true)
  if tonumber(string.sub(v, 1, sep - 1)) > t then
    out[#out + 1] = all[i]
    out[#out + 1] = string.sub(v, sep + 1)
  else
    redis.call('HDEL', KEYS[1], all[i])
  end
end
return out`)

// Leases keeps partition leases in Redis.
type Leases struct {
	rdb    *goredis.Client
	prefix string
}

var _ state.Leases = (*Leases)(nil)

func (l *Leases) key(group string) string { return l.prefix + "lease:" + group }

func (l *Leases) set(ctx context.Context, group, name, owner string, ttl time.Duration, renew string) (bool, error) {
	n, err := acquireLease.Run(ctx, l.rdb, []string{l.key(group)}, name, owner, ttl.Milliseconds(), renew).Int()
	if err != nil {
		return false, fmt.Errorf("lease: %w", err)
	}
	return n == 1, nil
}

// Acquire implements state.Leases.
func (l *Leases) Acquire(ctx context.Context, group, name, owner string, ttl time.Duration) (bool, error) {
	return l.set(ctx, group, name, owner, ttl, "0")
}

// Renew implements state.Leases.
func (l *Leases) Renew(ctx context.Context, group, name, owner string, ttl time.Duration) (bool, error) {
	return l.set(ctx, group, name, owner, ttl, "1")
}

// Release implements state.Leases.
func (l *Leases) Release(ctx context.Context, group, name, owner string) error {
	if err := releaseLease.Run(ctx, l.rdb, []string{l.key(group)}, name, owner).Err(); err != nil {
		return fmt.Errorf("lease release: %w", err)
	}
	return nil
}

// Holders implements state.Leases.
func (l *Leases) Holders(ctx context.Context, group string) (map[string]string, error) {
	vals, err := holders.Run(ctx, l.rdb, []string{l.key(group)}).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("lease list: %w", err)
	}
	out := make(map[string]string, len(vals)/2)
	for i := 0; i+1 < len(vals); i += 2 {
		out[vals[i]] = vals[i+1]
	}
	return out, nil
}

// Close closes the client.
func (l *Leases) Close() error { return l.rdb.Close() }
