package redis

import (
	"context"
	"log/slog"
	"sync"

	goredis "github.com/redis/go-redis/v9"
)

// acker sends XACKs from one goroutine, batching the ids that queue up
// during a round trip, so acking never blocks a sink worker on the network.
type acker struct {
	rdb           *goredis.Client
	stream, group string
	logger        *slog.Logger

	mu   sync.Mutex
	ids  []string
	wake chan struct{} // capacity 1: there are ids
	stop chan struct{} // closed by close
	done chan struct{} // closed by run
}

func newAcker(rdb *goredis.Client, stream, group string, logger *slog.Logger) *acker {
	return &acker{
		rdb: rdb, stream: stream, group: group, logger: logger,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
}

// ack queues id for the next XACK.
func (a *acker) ack(id string) {
	a.mu.Lock()
	a.ids = append(a.ids, id)
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// run sends the queued ids until close; it is the one closer of done.
func (a *acker) run() {
	defer close(a.done)
	for {
		select {
		case <-a.wake:
			a.flush()
		case <-a.stop:
			a.flush()
			return
		}
	}
}

func (a *acker) flush() {
	for {
		a.mu.Lock()
		ids := a.ids
		a.ids = nil
		a.mu.Unlock()
		if len(ids) == 0 {
			return
		}
		if err := a.rdb.XAck(context.Background(), a.stream, a.group, ids...).Err(); err != nil {
			a.logger.Warn("redis: XACK failed; the entries stay pending and will be claimed again", "entries", len(ids), "err", err)
		}
	}
}

// close sends what is queued and waits for run to return.
func (a *acker) close() {
	close(a.stop)
	<-a.done
}
