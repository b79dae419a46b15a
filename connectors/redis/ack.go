package redis

import (
	"context"
	"log/slog"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// acker sends XACKs from one goroutine, batching the ids that queue up
// during a round trip, so acking never blocks a sink worker on the network.
// It also hands entries back at a stop: it marks them idle for min_idle, so
// the next XAUTOCLAIM of any consumer takes them at once.
type acker struct {
	rdb                     *goredis.Client
	stream, group, consumer string
	minIdle                 time.Duration
	logger                  *slog.Logger

	mu       sync.Mutex
	ids      []string
	released []string
	wake     chan struct{} // capacity 1: there are ids
	stop     chan struct{} // closed by close
	done     chan struct{} // closed by run
}

func newAcker(rdb *goredis.Client, stream, group, consumer string, minIdle time.Duration, logger *slog.Logger) *acker {
	return &acker{
		rdb: rdb, stream: stream, group: group, consumer: consumer, minIdle: minIdle, logger: logger,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
}

// ack queues id for the next XACK.
func (a *acker) ack(id string) {
	a.mu.Lock()
	a.ids = append(a.ids, id)
	a.mu.Unlock()
	a.signal()
}

// release queues id to be handed back to the group.
func (a *acker) release(id string) {
	a.mu.Lock()
	a.released = append(a.released, id)
	a.mu.Unlock()
	a.signal()
}

func (a *acker) signal() {
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
	ctx := context.Background()
	for {
		a.mu.Lock()
		ids, released := a.ids, a.released
		a.ids, a.released = nil, nil
		a.mu.Unlock()
		if len(ids) == 0 && len(released) == 0 {
			return
		}
		if len(ids) > 0 {
			if err := a.rdb.XAck(ctx, a.stream, a.group, ids...).Err(); err != nil {
				a.logger.Warn("redis: XACK failed; the entries stay pending and will be claimed again", "entries", len(ids), "err", err)
			}
		}
		if len(released) > 0 {
			// XCLAIM to ourselves with IDLE: no new delivery (JUSTID), but
			// idle long enough for any consumer's next XAUTOCLAIM.
			args := []any{"XCLAIM", a.stream, a.group, a.consumer, 0}
			for _, id := range released {
				args = append(args, id)
			}
			args = append(args, "IDLE", a.minIdle.Milliseconds(), "JUSTID")
			if err := a.rdb.Do(ctx, args...).Err(); err != nil {
				a.logger.Warn("redis: handing entries back failed; they are claimed after min_idle", "entries", len(released), "err", err)
			}
		}
	}
}

// close sends what is queued and waits for run to return.
func (a *acker) close() {
	close(a.stop)
	<-a.done
}
