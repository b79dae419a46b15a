package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/internal/watermark"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/twmb/franz-go/pkg/kgo"
)

// metaPrefix starts the Meta keys the source sets besides the headers:
// kafka_topic, kafka_partition, kafka_offset, kafka_key and
// kafka_read_epoch.
const metaPrefix = "kafka_"

type sourceConfig struct {
	Brokers        []string      `pipe:"brokers,required" desc:"Seed brokers, host:port." example:"[127.0.0.1:9092]"`
	Topics         []string      `pipe:"topics,required" desc:"Topics to consume." example:"[orders]"`
	Group          string        `pipe:"group,required" desc:"Consumer group; its committed offsets are where a restart resumes." example:"pipe-orders"`
	Start          string        `pipe:"start" desc:"Where a group with no committed offset for a partition starts." example:"earliest" enum:"earliest,latest"`
	CommitInterval time.Duration `pipe:"commit_interval" desc:"How often acknowledged offsets are committed; they are also committed on rebalance and on stop." example:"1s" min:"0.001"`
	SessionTimeout time.Duration `pipe:"session_timeout" desc:"How long the group waits for a member's heartbeat before it gives the member's partitions to the others: how soon a killed replica's partitions are taken over. Unset: the client's default, 45s." example:"10s" min:"0.001"`
	Heartbeat      time.Duration `pipe:"heartbeat_interval" desc:"How often the member heartbeats; keep it well under session_timeout (a third or less). Unset: the client's default, 3s." example:"1s" min:"0.001"`
	RebalanceTime  time.Duration `pipe:"rebalance_timeout" desc:"How long the group waits for every member to rejoin in a rebalance. Unset: the client's default, 60s." example:"30s" min:"0.001"`
}

func init() {
	component.Register(component.Source("kafka",
		"Consumes topics in a consumer group; an offset is committed only when every record before it in its partition is acked.",
		sourceConfig{Start: "earliest", CommitInterval: time.Second}, newSource))
}

type tp struct {
	topic     string
	partition int32
}

// pos is a record's place in its partition.
type pos struct {
	offset int64
	epoch  int32
}

// part is one assigned partition: its acks, its last committed offset, and
// after a rewind the offset the next accepted record must have.
type part struct {
	marks     watermark.Tracker[pos]
	committed int64
	next      int64 // records below it are stale and skipped
	exact     bool  // after a rewind, skip until offset == next
	paused    bool
	epoch     string // read epoch: new at each assignment and rewind (meta kafka_read_epoch)
}

// source consumes with autocommit off; parts is guarded by mu.
type source struct {
	cfg    sourceConfig
	clock  pipeline.Clock
	logger *slog.Logger

	cl        *kgo.Client
	mu        sync.Mutex
	parts     map[tp]*part
	interrupt context.CancelFunc // ends the current poll, to rewind sooner

	reads    int64 // read epochs handed out; guarded by mu
	inflight atomic.Int64
	stopped  atomic.Bool
	final    sync.Once
}

var _ pipeline.Source = (*source)(nil)

func newSource(c *sourceConfig, env component.Env) (pipeline.Source, error) {
	if len(c.Brokers) == 0 || len(c.Topics) == 0 {
		return nil, errors.New("brokers and topics: need at least one each")
	}
	logger := env.Logger
	if logger == nil {
		logger = slog.Default()
	}
	clock := env.Clock
	if clock == nil {
		clock = pipeline.SystemClock
	}
	return &source{cfg: *c, clock: clock, logger: logger, parts: map[tp]*part{}}, nil
}

// Read consumes until ctx is cancelled. Commits happen every commit_interval,
// on rebalance, and a last time once every record read is resolved, which
// may be after Read returned.
func (s *source) Read(ctx context.Context, out pipeline.Outlet) error {
	reset := kgo.NewOffset().AtStart()
	if s.cfg.Start == "latest" {
		reset = kgo.NewOffset().AtEnd()
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(s.cfg.Brokers...),
		kgo.ConsumerGroup(s.cfg.Group),
		kgo.ConsumeTopics(s.cfg.Topics...),
		kgo.ConsumeResetOffset(reset),
		kgo.DisableAutoCommit(),
		kgo.OnPartitionsAssigned(s.assigned),
		kgo.OnPartitionsRevoked(s.revoked),
		kgo.OnPartitionsLost(s.lost),
		kgo.FetchMaxWait(time.Second),
	}
	if s.cfg.SessionTimeout > 0 {
		opts = append(opts, kgo.SessionTimeout(s.cfg.SessionTimeout))
	}
	if s.cfg.Heartbeat > 0 {
		opts = append(opts, kgo.HeartbeatInterval(s.cfg.Heartbeat))
	}
	if s.cfg.RebalanceTime > 0 {
		opts = append(opts, kgo.RebalanceTimeout(s.cfg.RebalanceTime))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	s.cl = cl
	defer s.stop()

	done := make(chan struct{})
	var committer sync.WaitGroup
	committer.Go(func() { s.commitLoop(ctx, done) })
	defer committer.Wait()
	defer close(done)

	for ctx.Err() == nil {
		s.rewind()
		pctx, cancel := context.WithCancel(ctx)
		s.mu.Lock()
		s.interrupt = cancel
		s.mu.Unlock()
		fetches := cl.PollFetches(pctx)
		cancel()
		if fetches.IsClientClosed() {
			return nil
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				s.logger.Warn("kafka source: fetch failed", "topic", topic, "partition", p, "err", err)
			}
		})
		var sendErr error
		fetches.EachRecord(func(r *kgo.Record) {
			if sendErr == nil {
				sendErr = s.send(ctx, out, r)
			}
		})
		if sendErr != nil {
			return nil
		}
	}
	return nil
}

// send hands r downstream unless its partition was revoked since the fetch
// (the new owner reads it) or it is stale after a rewind.
func (s *source) send(ctx context.Context, out pipeline.Outlet, r *kgo.Record) error {
	key := tp{r.Topic, r.Partition}
	s.mu.Lock()
	p := s.parts[key]
	if p == nil || p.paused || p.marks.Failed() || r.Offset < p.next || (p.exact && r.Offset != p.next) {
		s.mu.Unlock()
		return nil
	}
	p.exact, p.next = false, r.Offset+1
	ticket := p.marks.Add(pos{r.Offset, r.LeaderEpoch})
	epoch := p.epoch
	s.mu.Unlock()

	m := pipeline.NewMessage(r.Value, func(err error) { s.resolve(key, p, ticket, err) })
	m.Meta = make(map[string]string, len(r.Headers)+5)
	for _, h := range r.Headers {
		m.Meta[h.Key] = string(h.Value)
	}
	m.Meta[metaPrefix+"topic"] = r.Topic
	m.Meta[metaPrefix+"partition"] = strconv.Itoa(int(r.Partition))
	m.Meta[metaPrefix+"offset"] = strconv.FormatInt(r.Offset, 10)
	m.Meta[metaPrefix+"read_epoch"] = epoch
	if r.Key != nil {
		m.Meta[metaPrefix+"key"] = string(r.Key)
	}
	if !r.Timestamp.IsZero() {
		m.Created = r.Timestamp
	}
	s.inflight.Add(1)
	return out.Send(ctx, m)
}

func (s *source) resolve(key tp, p *part, ticket uint64, err error) {
	if err != nil {
		p.marks.Nack(ticket)
	} else {
		p.marks.Ack(ticket)
	}
	left := s.inflight.Add(-1)
	if p.marks.Failed() && p.marks.Unresolved() == 0 {
		s.mu.Lock()
		if s.interrupt != nil {
			s.interrupt()
		}
		s.mu.Unlock()
	}
	if left == 0 && s.stopped.Load() {
		s.final.Do(s.finish)
	}
}

// rewind pauses partitions with a nacked record and, once all their records
// are resolved, seeks them back to the first unacked record. It runs on the
// polling goroutine and calls the client without holding mu, which the
// rebalance callbacks take.
func (s *source) rewind() {
	pause := map[string][]int32{}
	seek := map[string]map[int32]kgo.EpochOffset{}
	resume := map[string][]int32{}
	s.mu.Lock()
	for key, p := range s.parts {
		if !p.marks.Failed() {
			continue
		}
		if !p.paused {
			pause[key.topic] = append(pause[key.topic], key.partition)
			p.paused = true
		}
		if p.marks.Unresolved() > 0 {
			continue
		}
		head, _ := p.marks.Head()
		p.marks.Rewind()
		p.next, p.exact, p.paused = head.offset, true, false
		p.epoch = s.newEpoch()
		if seek[key.topic] == nil {
			seek[key.topic] = map[int32]kgo.EpochOffset{}
		}
		seek[key.topic][key.partition] = kgo.EpochOffset{Epoch: -1, Offset: head.offset}
		resume[key.topic] = append(resume[key.topic], key.partition)
	}
	s.mu.Unlock()
	if len(pause) > 0 {
		s.cl.PauseFetchPartitions(pause)
	}
	if len(seek) > 0 {
		s.cl.SetOffsets(seek)
		s.cl.ResumeFetchPartitions(resume)
	}
}

func (s *source) commitLoop(ctx context.Context, done <-chan struct{}) {
	t := s.clock.NewTimer(s.cfg.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-t.C():
		}
		if err := s.commit(ctx, s.cl, nil); err != nil && ctx.Err() == nil {
			s.logger.Warn("kafka source: commit failed; will retry", "group", s.cfg.Group, "err", err)
		}
		t.Reset(s.cfg.CommitInterval)
	}
}

// commit commits the watermark of the given partitions (all if nil) where it
// moved past the last commit.
func (s *source) commit(ctx context.Context, cl *kgo.Client, only map[string][]int32) error {
	offsets := map[string]map[int32]kgo.EpochOffset{}
	type moved struct {
		p   *part
		off int64
	}
	var todo []moved
	s.mu.Lock()
	for key, p := range s.parts {
		if only != nil && !inList(only[key.topic], key.partition) {
			continue
		}
		mark, ok, _ := p.marks.Mark()
		if !ok || mark.offset+1 <= p.committed {
			continue
		}
		if offsets[key.topic] == nil {
			offsets[key.topic] = map[int32]kgo.EpochOffset{}
		}
		offsets[key.topic][key.partition] = kgo.EpochOffset{Epoch: mark.epoch, Offset: mark.offset + 1}
		todo = append(todo, moved{p, mark.offset + 1})
	}
	s.mu.Unlock()
	if len(todo) == 0 {
		return nil
	}
	var cerr error
	cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsgReq, resp *kmsgResp, err error) {
		cerr = commitErr(resp, err)
	})
	if cerr != nil {
		return cerr
	}
	s.mu.Lock()
	for _, m := range todo {
		m.p.committed = max(m.p.committed, m.off)
	}
	s.mu.Unlock()
	return nil
}

func inList(ps []int32, p int32) bool {
	for _, x := range ps {
		if x == p {
			return true
		}
	}
	return false
}

// assigned starts tracking partitions given to this member.
func (s *source) assigned(_ context.Context, _ *kgo.Client, added map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t, parts := range added {
		for _, p := range parts {
			s.parts[tp{t, p}] = &part{committed: -1, epoch: s.newEpoch()}
		}
	}
}

// newEpoch returns a read epoch not handed out before; mu is held. A
// stateful stage that sees a partition's epoch change knows the records
// now start over from a committed or rewound offset (window_task.go).
func (s *source) newEpoch() string {
	s.reads++
	return strconv.FormatInt(s.reads, 10)
}

// revoked commits what is acked in the partitions taken away and forgets
// them: their records still in flight will be redelivered to the new owner.
func (s *source) revoked(ctx context.Context, cl *kgo.Client, lost map[string][]int32) {
	if err := s.commit(ctx, cl, lost); err != nil {
		s.logger.Warn("kafka source: commit on revoke failed; the new owner rereads from the last commit", "group", s.cfg.Group, "err", err)
	}
	s.forget(lost)
}

// lost forgets partitions the group took away without a chance to commit.
func (s *source) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) { s.forget(lost) }

func (s *source) forget(ps map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t, parts := range ps {
		for _, p := range parts {
			delete(s.parts, tp{t, p})
		}
	}
}

// stop runs when Read returns: the final commit happens now or on the last ack.
func (s *source) stop() {
	s.stopped.Store(true)
	if s.inflight.Load() == 0 {
		s.final.Do(s.finish)
	}
}

// finish commits a last time and leaves the group.
func (s *source) finish() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.commit(ctx, s.cl, nil); err != nil {
		s.logger.Error("kafka source: final commit failed; records after the last commit will be read again", "group", s.cfg.Group, "err", err)
	}
	s.cl.Close()
}
