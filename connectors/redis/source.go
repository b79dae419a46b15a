package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/connectors/internal/inflight"
	"github.com/pipe-dsl/pipe/pipeline"
)

type sourceConfig struct {
	Addr          string        `pipe:"addr" desc:"Redis server address, host:port." example:"127.0.0.1:6379"`
	Username      string        `pipe:"username" desc:"ACL user name." example:"pipe"`
	Password      string        `pipe:"password,secret" desc:"Password." example:"${REDIS_PASSWORD}"`
	DB            int           `pipe:"db" desc:"Database number." example:"0" min:"0"`
	Stream        string        `pipe:"stream,required" desc:"Stream key to consume." example:"orders"`
	Group         string        `pipe:"group,required" desc:"Consumer group; every process in the group shares the stream's entries." example:"pipe"`
	Consumer      string        `pipe:"consumer" desc:"This process's consumer name in the group; default hostname-pid. A fixed name lets a restarted process resume its own pending entries at once." example:"worker-1"`
	CreateGroup   bool          `pipe:"create_group" desc:"Create the group (and the stream, MKSTREAM) if missing." example:"true"`
	Start         string        `pipe:"start" desc:"Where a group created by create_group starts: 0 for the whole stream, $ for new entries only." example:"$"`
	Field         string        `pipe:"field" desc:"Entry field holding the body; the other fields become metadata. An entry without it goes to the dead-letter path (invalid_payload)." example:"body"`
	FetchSize     int           `pipe:"fetch_size" desc:"Entries requested per XREADGROUP." example:"256" min:"1"`
	Block         time.Duration `pipe:"block" desc:"How long XREADGROUP waits for entries; bounds how long a soft stop waits for the current read." example:"1s" min:"0.001"`
	MinIdle       time.Duration `pipe:"min_idle" desc:"Pending entries idle this long (their consumer died, or they were nacked) are claimed with XAUTOCLAIM and redelivered. Keep it above the pipeline's worst-case latency." example:"30s" min:"0.001"`
	ClaimInterval time.Duration `pipe:"claim_interval" desc:"How often to look for entries to claim." example:"5s" min:"0.001"`
	MaxPending    int           `pipe:"max_pending" desc:"Most entries this process holds unacked." example:"1024" min:"1"`
	MaxDeliver    int           `pipe:"max_deliver" desc:"A claimed entry delivered more times than this goes to the dead-letter path (reason retries_exhausted) instead of downstream; 0 means no limit." example:"5" min:"0"`
}

func init() {
	component.Register(component.Source("redis_streams",
		"Consumes a Redis stream through a consumer group (XREADGROUP), XACKing each entry after the pipeline delivered or dead-lettered it and claiming stale entries of dead consumers (XAUTOCLAIM).",
		sourceConfig{
			Addr:          DefaultAddr,
			Start:         "0",
			Field:         "body",
			FetchSize:     256,
			Block:         time.Second,
			MinIdle:       30 * time.Second,
			ClaimInterval: 5 * time.Second,
			MaxPending:    1024,
		}, newSource, component.WithFailures()))
}

type source struct {
	cfg    sourceConfig
	logger *slog.Logger
	clock  pipeline.Clock
	live   *inflight.Tracker

	rdb   *goredis.Client
	acks  *acker
	slots chan struct{}
	mu    sync.Mutex
	held  map[string]bool // ids in the pipeline now
}

var (
	_ pipeline.Source = (*source)(nil)
	_ pipeline.Closer = (*source)(nil)
)

func newSource(c *sourceConfig, env component.Env) (pipeline.Source, error) {
	cfg := *c
	if cfg.Consumer == "" {
		cfg.Consumer = defaultConsumer()
	}
	return &source{
		cfg:    cfg,
		logger: env.Logger.With("node", env.Node, "kind", "redis_streams", "consumer", cfg.Consumer),
		clock:  env.Clock,
	}, nil
}

func (s *source) Read(ctx context.Context, out pipeline.Outlet) error {
	s.rdb = newClient(s.cfg.Addr, s.cfg.Username, s.cfg.Password, s.cfg.DB, s.cfg.Consumer)
	s.acks = newAcker(s.rdb, s.cfg.Stream, s.cfg.Group, s.cfg.Consumer, s.cfg.MinIdle, s.logger)
	s.slots = make(chan struct{}, s.cfg.MaxPending)
	s.held = map[string]bool{}
	// The acker outlives Read until the last message is resolved.
	go s.acks.run()
	s.live = inflight.New(func() {
		s.acks.close()
		s.leave()
		_ = s.rdb.Close()
	})
	defer s.live.Done()

	claim := s.clock.NewTimer(s.cfg.ClaimInterval)
	defer claim.Stop()
	resync := true // re-read our own pending entries: at start and after errors
	for ctx.Err() == nil {
		var err error
		switch {
		case resync:
			if err = s.setup(ctx); err == nil {
				err = s.resync(ctx, out)
			}
			resync = err != nil
		default:
			select {
			case <-claim.C():
				err = s.claim(ctx, out)
				claim.Reset(s.cfg.ClaimInterval)
			default:
				err = s.read(ctx, out)
			}
			resync = err != nil
		}
		if err != nil && ctx.Err() == nil {
			s.logger.Warn("redis: read failed; retrying", "stream", s.cfg.Stream, "group", s.cfg.Group, "err", err)
			s.pause(ctx)
		}
	}
	return nil
}

func (s *source) setup(ctx context.Context) error {
	if !s.cfg.CreateGroup {
		return nil
	}
	err := s.rdb.XGroupCreateMkStream(ctx, s.cfg.Stream, s.cfg.Group, s.cfg.Start).Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("create group %s: %w", s.cfg.Group, err)
	}
	return nil
}

// read passes on up to fetch_size new entries.
func (s *source) read(ctx context.Context, out pipeline.Outlet) error {
	n := inflight.Acquire(ctx, s.slots, s.cfg.FetchSize)
	if n == 0 {
		return nil
	}
	// Not cancelled with ctx: entries the server hands out must be received.
	res, err := s.rdb.XReadGroup(context.WithoutCancel(ctx), &goredis.XReadGroupArgs{
		Group:    s.cfg.Group,
		Consumer: s.cfg.Consumer,
		Streams:  []string{s.cfg.Stream, ">"},
		Count:    int64(n),
		Block:    s.cfg.Block,
	}).Result()
	if errors.Is(err, goredis.Nil) {
		err = nil
	}
	var got int
	for _, st := range res {
		for _, x := range st.Messages {
			got++
			s.handle(ctx, out, x, 1)
		}
	}
	inflight.Release(s.slots, n-got)
	return err
}

// resync passes on this consumer's pending entries that are not in the
// pipeline: after a restart under the same name, or entries the server
// delivered on a connection that broke before we received them.
func (s *source) resync(ctx context.Context, out pipeline.Outlet) error {
	after := "0"
	for ctx.Err() == nil {
		res, err := s.rdb.XReadGroup(ctx, &goredis.XReadGroupArgs{
			Group:    s.cfg.Group,
			Consumer: s.cfg.Consumer,
			Streams:  []string{s.cfg.Stream, after},
			Count:    int64(s.cfg.FetchSize),
		}).Result()
		if err != nil && !errors.Is(err, goredis.Nil) {
			return err
		}
		var msgs []goredis.XMessage
		for _, st := range res {
			msgs = append(msgs, st.Messages...)
		}
		if len(msgs) == 0 {
			return nil
		}
		after = msgs[len(msgs)-1].ID
		if err := s.redeliver(ctx, out, msgs); err != nil {
			return err
		}
	}
	return nil
}

// claim takes over entries idle longer than min_idle, as many as there are
// free slots.
func (s *source) claim(ctx context.Context, out pipeline.Outlet) error {
	start := "0-0"
	for ctx.Err() == nil {
		free := s.cfg.MaxPending - len(s.slots)
		if free <= 0 {
			return nil
		}
		msgs, next, err := s.rdb.XAutoClaim(ctx, &goredis.XAutoClaimArgs{
			Stream:   s.cfg.Stream,
			Group:    s.cfg.Group,
			Consumer: s.cfg.Consumer,
			MinIdle:  s.cfg.MinIdle,
			Start:    start,
			Count:    int64(min(free, s.cfg.FetchSize)),
		}).Result()
		if err != nil {
			return fmt.Errorf("XAUTOCLAIM: %w", err)
		}
		if len(msgs) > 0 {
			s.logger.Info("redis: claimed idle entries", "entries", len(msgs))
		}
		if err := s.redeliver(ctx, out, msgs); err != nil {
			return err
		}
		if next == "0-0" || len(msgs) == 0 && next == start {
			return nil
		}
		start = next
	}
	return nil
}

// redeliver passes on entries read again, skipping those in the pipeline,
// with their delivery counts.
func (s *source) redeliver(ctx context.Context, out pipeline.Outlet, msgs []goredis.XMessage) error {
	if len(msgs) == 0 {
		return nil
	}
	pend, err := s.rdb.XPendingExt(ctx, &goredis.XPendingExtArgs{
		Stream:   s.cfg.Stream,
		Group:    s.cfg.Group,
		Start:    msgs[0].ID,
		End:      msgs[len(msgs)-1].ID,
		Count:    int64(len(msgs) + s.cfg.MaxPending),
		Consumer: s.cfg.Consumer,
	}).Result()
	if err != nil {
		return fmt.Errorf("XPENDING: %w", err)
	}
	count := make(map[string]int64, len(pend))
	for _, p := range pend {
		count[p.ID] = p.RetryCount
	}
	for i, x := range msgs {
		s.mu.Lock()
		held := s.held[x.ID]
		s.mu.Unlock()
		if held {
			continue
		}
		select {
		case s.slots <- struct{}{}:
		case <-ctx.Done():
			s.mu.Lock()
			for _, rest := range msgs[i:] {
				if !s.held[rest.ID] {
					s.acks.release(rest.ID) // claimed, but we are stopping
				}
			}
			s.mu.Unlock()
			return nil
		}
		s.handle(ctx, out, x, count[x.ID])
	}
	return nil
}

// handle passes x on, or dead-letters it when the source cannot handle it.
// It holds one slot, released when the message is resolved.
func (s *source) handle(ctx context.Context, out pipeline.Outlet, x goredis.XMessage, delivered int64) {
	s.live.Add()
	s.mu.Lock()
	s.held[x.ID] = true
	s.mu.Unlock()
	meta := make(map[string]string, len(x.Values)+2)
	var body []byte
	found := false
	for k, v := range x.Values {
		str := fmt.Sprint(v)
		if k == s.cfg.Field {
			body, found = []byte(str), true
			continue
		}
		meta[k] = str
	}
	meta[MetaStream] = s.cfg.Stream
	meta[MetaID] = x.ID
	if delivered > 0 {
		meta[MetaDelivered] = strconv.FormatInt(delivered, 10)
	}

	var poison error
	switch {
	case !found:
		poison = pipeline.WithReason(pipeline.ReasonInvalidPayload,
			fmt.Errorf("redis: entry %s has no field %q", x.ID, s.cfg.Field))
	case s.cfg.MaxDeliver > 0 && delivered > int64(s.cfg.MaxDeliver):
		poison = pipeline.WithReason(pipeline.ReasonRetries,
			fmt.Errorf("redis: entry %s delivered %d times, max_deliver is %d", x.ID, delivered, s.cfg.MaxDeliver))
	}
	if poison != nil {
		m := pipeline.NewMessage(body, s.ack(x.ID, true))
		m.Meta = meta
		out.Fail(ctx, m, poison)
		return
	}
	m := pipeline.NewMessage(body, s.ack(x.ID, false))
	m.Meta = meta
	_ = out.Send(ctx, m) // on a stop, Send has nacked m
}

// ack XACKs a delivered entry; a nacked one stays pending until claimed
// after min_idle, except at a stop, when it is handed back at once. poison entries, which the source dead-lettered itself, are
// XACKed either way: read again they would fail again.
func (s *source) ack(id string, poison bool) pipeline.AckFunc {
	return func(err error) {
		switch {
		case err == nil:
			s.acks.ack(id)
		case poison:
			s.logger.Warn("redis: acking an entry the dead-letter path did not take", "id", id, "err", err)
			s.acks.ack(id)
		case errors.Is(err, pipeline.ErrAbandoned) || errors.Is(err, context.Canceled):
			s.acks.release(id) // stopping: let another consumer take it now
		}
		s.mu.Lock()
		delete(s.held, id)
		s.mu.Unlock()
		<-s.slots
		s.live.Done()
	}
}

// leave removes this consumer from the group if it has nothing pending, so
// that processes named hostname-pid do not pile up in XINFO CONSUMERS.
// With entries pending it stays: deleting it would drop them.
func (s *source) leave() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	pend, err := s.rdb.XPendingExt(ctx, &goredis.XPendingExtArgs{
		Stream: s.cfg.Stream, Group: s.cfg.Group, Consumer: s.cfg.Consumer,
		Start: "-", End: "+", Count: 1,
	}).Result()
	if err != nil || len(pend) > 0 {
		return
	}
	_ = s.rdb.XGroupDelConsumer(ctx, s.cfg.Stream, s.cfg.Group, s.cfg.Consumer).Err()
}

// pause waits a second between retries, or until ctx ends.
func (s *source) pause(ctx context.Context) {
	t := s.clock.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C():
	}
}

// closeGrace is how long the connection outlives the hard stop, so that
// abandoned entries are handed back.
const closeGrace = 5 * time.Second

// Close lets the connection live until the entries already read are
// resolved, and no longer than closeGrace after ctx (the hard stop) ends.
func (s *source) Close(ctx context.Context) error {
	if s.live != nil {
		s.live.CloseAfter(ctx, closeGrace)
	}
	return nil
}
