// Package redis holds the redis_streams source and sink: at-least-once
// delivery through a consumer group, with stale entries of dead consumers
// claimed by the living, and XADD publishing.
package redis

import (
	"fmt"
	"os"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// DefaultAddr is the server a config without addr connects to.
const DefaultAddr = "127.0.0.1:6379"

// Meta keys set by the source besides the entry's other fields.
const (
	MetaStream    = "redis_stream"
	MetaID        = "redis_id"
	MetaDelivered = "redis_delivered"
)

// metaPrefix marks the keys the source derives from delivery; the sink does
// not write them as fields.
const metaPrefix = "redis_"

// newClient returns a client whose connections carry name (CLIENT SETNAME),
// so operators can find them in CLIENT LIST.
func newClient(addr, username, password string, db int, name string) *goredis.Client {
	if addr == "" {
		addr = DefaultAddr
	}
	return goredis.NewClient(&goredis.Options{
		Addr:       addr,
		Username:   username,
		Password:   password,
		DB:         db,
		ClientName: clientName(name),
		// Blocking reads hold a connection; keep a few for acks and claims.
		PoolSize: 8,
	})
}

// clientName makes s a valid CLIENT SETNAME argument: no spaces or newlines.
func clientName(s string) string {
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r > '~' {
			return '_'
		}
		return r
	}, s)
}

// defaultConsumer names this process in its consumer group.
func defaultConsumer() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "pipe"
	}
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}
