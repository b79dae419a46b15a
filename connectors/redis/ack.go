package redis

import (
	"context"
	"log/slog"
	"sync"

	goredis "github.com/redis/go-redis/v9"
)

// acker batches XACKs: the goroutine that finds no flush running flushes
// every id queued until none are left, so acks that arrive together share a
// round trip and a lone ack is sent at once. It starts no goroutine.
type acker struct {
	rdb           *goredis.Client
	stream, group string
	logger        *slog.Logger

	mu       sync.Mutex
	ids      []string
	flushing bool
}

// ack queues id and returns once it was sent, or handed to the goroutine
// flushing now.
func (a *acker) ack(id string) {
	a.mu.Lock()
	a.ids = append(a.ids, id)
	if a.flushing {
		a.mu.Unlock()
		return
	}
	a.flushing = true
	for len(a.ids) > 0 {
		ids := a.ids
		a.ids = nil
		a.mu.Unlock()
		if err := a.rdb.XAck(context.Background(), a.stream, a.group, ids...).Err(); err != nil {
			a.logger.Warn("redis: XACK failed; the entries stay pending and will be claimed again", "entries", len(ids), "err", err)
		}
		a.mu.Lock()
	}
	a.flushing = false
	a.mu.Unlock()
}
