package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	goredis "github.com/redis/go-redis/v9"

	"github.com/pipe-dsl/pipe/internal/lookup"
)

// errBadURL replaces every Redis URL parse error, whose text could echo a
// password.
var errBadURL = errors.New("redis: url is not a valid redis:// URL (value not shown)")

// Redis reads a group of keys in one round trip: one MGET for GET, one
// pipeline of HGETALLs for HGETALL. Request.Arg is the Redis key.
type Redis struct {
	opts *goredis.Options
	hash bool

	mu     sync.Mutex
	client *goredis.Client // opened by the first Fetch
	closed bool
}

var _ lookup.Store = (*Redis)(nil)

// NewRedis parses url (without connecting); command is GET or HGETALL.
// The client keeps at most maxConns connections, named name in CLIENT LIST.
func NewRedis(url, command string, maxConns int, name string) (*Redis, error) {
	opts, err := goredis.ParseURL(url)
	if err != nil {
		return nil, errBadURL
	}
	opts.PoolSize = max(maxConns, 1)
	opts.MaxActiveConns = opts.PoolSize
	opts.ClientName = strings.Map(func(r rune) rune {
		if r <= ' ' || r > '~' {
			return '_'
		}
		return r
	}, name)
	switch command {
	case "GET", "HGETALL":
	default:
		return nil, fmt.Errorf("redis: command %q: want GET or HGETALL", command)
	}
	return &Redis{opts: opts, hash: command == "HGETALL"}, nil
}

func (r *Redis) open() (*goredis.Client, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errors.New("redis: store closed")
	}
	if r.client == nil {
		r.client = goredis.NewClient(r.opts)
	}
	return r.client, nil
}

// Fetch reads the group's keys. A GET value that is JSON is decoded, any
// other as a string; a hash is an object of strings; an absent key or an
// empty hash is missing.
func (r *Redis) Fetch(ctx context.Context, reqs []lookup.Request) (map[string]any, error) {
	c, err := r.open()
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(reqs))
	for i, q := range reqs {
		keys[i] = fmt.Sprint(q.Arg)
	}
	out := make(map[string]any, len(reqs))
	if !r.hash {
		vals, err := c.MGet(ctx, keys...).Result()
		if err != nil {
			return nil, fmt.Errorf("redis: MGET: %w", err)
		}
		for i, v := range vals {
			if s, ok := v.(string); ok {
				out[reqs[i].Key] = decode(s)
			}
		}
		return out, nil
	}
	cmds := make([]*goredis.MapStringStringCmd, len(keys))
	_, err = c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.HGetAll(ctx, k)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("redis: HGETALL: %w", err)
	}
	for i, cmd := range cmds {
		if h := cmd.Val(); len(h) > 0 {
			obj := make(map[string]any, len(h))
			for f, v := range h {
				obj[f] = v
			}
			out[reqs[i].Key] = obj
		}
	}
	return out, nil
}

// Close closes the client's connections.
func (r *Redis) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if r.client != nil {
		return r.client.Close()
	}
	return nil
}
