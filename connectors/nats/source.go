package nats

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/connectors/internal/inflight"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/state"
)

type sourceConfig struct {
	URL           string         `pipe:"url" desc:"NATS server URLs, comma-separated." example:"nats://127.0.0.1:4222"`
	User          string         `pipe:"user" desc:"User name, with password." example:"pipe"`
	Password      string         `pipe:"password,secret" desc:"Password for user." example:"${NATS_PASSWORD}"`
	Token         string         `pipe:"token,secret" desc:"Authentication token." example:"${NATS_TOKEN}"`
	Stream        string         `pipe:"stream,required" desc:"JetStream stream to consume." example:"ORDERS"`
	Subjects      []string       `pipe:"subjects" desc:"Subjects of the stream; with create, a missing stream is created with them (file storage)." example:"[orders.>]"`
	Durable       string         `pipe:"durable,required" desc:"Durable pull consumer; every process using the same name shares its messages." example:"pipe-orders"`
	FilterSubject string         `pipe:"filter_subject" desc:"Only consume messages of this subject (wildcards allowed); applied when create makes the consumer." example:"orders.eu.>"`
	Create        bool           `pipe:"create" desc:"Create the stream (if missing and subjects are set) and create or update the consumer with this config; otherwise bind to an existing consumer." example:"true"`
	FetchSize     int            `pipe:"fetch_size" desc:"Messages requested per pull." example:"256" min:"1"`
	FetchWait     time.Duration  `pipe:"fetch_wait" desc:"How long a pull waits for messages; bounds how long a soft stop waits for the current pull." example:"500ms" min:"0.001"`
	AckWait       time.Duration  `pipe:"ack_wait" desc:"Redelivery timeout of an unacked message (consumer AckWait, set with create). Keep it above the pipeline's worst-case latency." example:"30s" min:"0.001"`
	MaxAckPending int            `pipe:"max_ack_pending" desc:"Most messages this process holds unacked; with create it is also the consumer's limit across processes." example:"1024" min:"1"`
	NakDelay      time.Duration  `pipe:"nak_delay" desc:"Delay before the server redelivers a nacked message; 0 redelivers at once." example:"1s" min:"0"`
	MaxDeliver    int            `pipe:"max_deliver" desc:"A message delivered more times than this goes to the dead-letter path (reason retries_exhausted) instead of downstream; 0 means no limit." example:"5" min:"0"`
	Rewind        bool           `pipe:"rewind" desc:"With create: on start, if the durable consumer has messages delivered but not acked (a killed process held them), recreate it from its ack floor, so they come again first and in stream order instead of after ack_wait behind newer ones. Exactly-once windows need it (docs/scaling.md). Without partitions, use one process per durable; with partitions it applies to each partition a replica takes over." example:"true"`
	Partitions    int            `pipe:"partitions" desc:"Consume a stream whose subjects carry a partition number 0..N-1 (see partition_subject) as one pipeline across replicas: one durable consumer per partition, named <durable>-<p>, and each partition consumed by one replica at a time, through leases in the top-level state: store (docs/scaling.md). Needs state:. 0 means one durable for the whole stream." example:"8" min:"0"`
	PartitionSubj string         `pipe:"partition_subject" desc:"With partitions: the subject filter of one partition, with {partition} where its number goes; each partition's durable consumer is filtered to it." example:"orders.{partition}.>"`
	LeaseTTL      time.Duration  `pipe:"lease_ttl" desc:"With partitions: how long a replica's partition leases last unrenewed (renewed every third of it). A replica that dies hands its partitions over after about this long (2/3 to 4/3 of it)." example:"10s" min:"0.1"`
	MaxBytes      component.Size `pipe:"max_bytes" desc:"Largest accepted body; larger ones go to the dead-letter path (reason invalid_payload); 0 means no limit." example:"1MiB" min:"0"`
}

func init() {
	component.Register(component.Source("nats_jetstream",
		"Consumes a JetStream stream through a durable pull consumer, acking each message after the pipeline delivered or dead-lettered it.",
		sourceConfig{
			URL:           DefaultURL,
			FetchSize:     256,
			FetchWait:     500 * time.Millisecond,
			AckWait:       30 * time.Second,
			MaxAckPending: 1024,
			NakDelay:      time.Second,
			LeaseTTL:      10 * time.Second,
		}, newSource, component.WithFailures()))
}

type source struct {
	cfg    sourceConfig
	name   string
	logger *slog.Logger
	clock  pipeline.Clock
	live   *inflight.Tracker
	store  state.Backend // with partitions
	owner  string        // this replica's lease owner token

	reads   atomic.Int64 // read epochs handed out
	mu      sync.Mutex
	onClose func()          // with partitions: releases the leases
	bal     *state.Balancer // with partitions, once reading
}

// Report shows, with partitions, how many this replica holds and how
// leases moved.
func (s *source) Report() []pipeline.Figure {
	s.mu.Lock()
	bal := s.bal
	s.mu.Unlock()
	if bal == nil {
		return nil
	}
	return bal.Report()
}

func (s *source) setOnClose(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onClose = f
}

func (s *source) takeOnClose() func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.onClose
	s.onClose = nil
	return f
}

// AckDeadline is ack_wait: JetStream redelivers a message not acked
// within it, so the DSL refuses a stage that may hold messages longer.
func (s *source) AckDeadline() time.Duration { return s.cfg.AckWait }

var (
	_ pipeline.Source       = (*source)(nil)
	_ pipeline.AckDeadliner = (*source)(nil)
	_ pipeline.Closer       = (*source)(nil)
	_ pipeline.Reporter     = (*source)(nil)
)

func newSource(c *sourceConfig, env component.Env) (pipeline.Source, error) {
	if c.Rewind && !c.Create {
		return nil, &component.FieldError{Path: []string{"rewind"}, Err: errors.New("rewind recreates the consumer: it needs create: true")}
	}
	switch {
	case c.Partitions == 0 && c.PartitionSubj != "":
		return nil, &component.FieldError{Path: []string{"partition_subject"}, Err: errors.New("partition_subject needs partitions")}
	case c.Partitions == 0:
	case !strings.Contains(c.PartitionSubj, "{partition}"):
		return nil, &component.FieldError{Path: []string{"partition_subject"}, Err: errors.New(`partitions needs partition_subject with a {partition} placeholder, e.g. "orders.{partition}.>"`)}
	case c.FilterSubject != "":
		return nil, &component.FieldError{Path: []string{"filter_subject"}, Err: errors.New("with partitions, each partition's consumer is filtered to partition_subject: drop filter_subject")}
	case env.State == nil:
		return nil, &component.FieldError{Path: []string{"partitions"}, Err: errors.New("replicas divide partitions through leases in the state store: add a top-level state: block (redis or postgres)")}
	}
	return &source{
		cfg:    *c,
		name:   env.Pipeline + "/" + env.Node,
		logger: env.Logger.With("node", env.Node, "kind", "nats_jetstream"),
		clock:  env.Clock,
		store:  env.State,
		owner:  ownerToken(),
	}, nil
}

// ownerToken names this replica in leases: readable in logs, unique
// across restarts.
func ownerToken() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%x", host, os.Getpid(), b)
}

func (s *source) Read(ctx context.Context, out pipeline.Outlet) error {
	nc, err := connect(s.cfg.URL, s.cfg.User, s.cfg.Password, s.cfg.Token, s.name, s.logger)
	if err != nil {
		return err
	}
	s.live = inflight.New(func() {
		_ = nc.FlushTimeout(5 * time.Second) // send pending acks
		if f := s.takeOnClose(); f != nil {
			f() // hand partitions over once the acks are out
		}
		nc.Close()
	})
	defer s.live.Done()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	slots := make(chan struct{}, s.cfg.MaxAckPending)
	if s.cfg.Partitions > 0 {
		return s.readPartitions(ctx, js, out, slots)
	}
	s.consume(ctx, js, out, hold{slots: slots, partition: -1})
	return nil
}

// hold is what a message read holds until it is resolved: one of the
// process's max_ack_pending slots and, when partitioned, a count of its
// partition's messages in flight.
type hold struct {
	slots     chan struct{}
	partition int           // -1: not partitioned
	pending   *atomic.Int64 // with partition
	epoch     string        // read epoch (meta nats_read_epoch)
}

func (h hold) done() {
	<-h.slots
	if h.pending != nil {
		h.pending.Add(-1)
	}
}

// consume fetches from one durable consumer (the whole stream's, or one
// partition's) until ctx ends.
func (s *source) consume(ctx context.Context, js jetstream.JetStream, out pipeline.Outlet, h hold) {
	durable, filter := s.cfg.Durable, s.cfg.FilterSubject
	if h.partition >= 0 {
		durable, filter = s.partitionDurable(h.partition), s.partitionSubject(h.partition)
	}
	cons := s.consumer(ctx, js, durable, filter)
	h.epoch = s.newEpoch()
	for cons != nil && ctx.Err() == nil {
		n := inflight.Acquire(ctx, h.slots, s.cfg.FetchSize)
		if n == 0 {
			return
		}
		batch, err := cons.Fetch(n, jetstream.FetchMaxWait(s.cfg.FetchWait))
		if err == nil {
			for msg := range batch.Messages() {
				n--
				s.handle(ctx, out, msg, h)
			}
			err = batch.Error()
		}
		inflight.Release(h.slots, n)
		switch {
		case err == nil, errors.Is(err, natsgo.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		case errors.Is(err, jetstream.ErrConsumerNotFound), errors.Is(err, jetstream.ErrStreamNotFound):
			s.logger.Warn("nats: consumer gone; setting it up again", "durable", durable, "err", err)
			cons = s.consumer(ctx, js, durable, filter)
			h.epoch = s.newEpoch()
		default:
			s.logger.Warn("nats: fetch failed; retrying", "durable", durable, "err", err)
			s.pause(ctx)
		}
	}
}

// newEpoch returns a read epoch not handed out before by this source.
func (s *source) newEpoch() string { return strconv.FormatInt(s.reads.Add(1), 10) }

func (s *source) partitionDurable(p int) string { return s.cfg.Durable + "-" + strconv.Itoa(p) }

func (s *source) partitionSubject(p int) string {
	return strings.ReplaceAll(s.cfg.PartitionSubj, "{partition}", strconv.Itoa(p))
}

// readPartitions consumes the partitions this replica holds leases for,
// one goroutine per partition, while a state.Balancer moves leases
// between the live replicas. It returns once ctx ended and every
// partition's goroutine did; the leases are released when every message
// read is resolved (in the tracker's close), or expire if the process
// dies.
func (s *source) readPartitions(ctx context.Context, js jetstream.JetStream, out pipeline.Outlet, slots chan struct{}) error {
	leases, err := s.store.OpenLeases()
	if err != nil {
		return fmt.Errorf("nats: partitions: %w", err)
	}
	type running struct {
		cancel  context.CancelFunc
		done    chan struct{}
		pending atomic.Int64
	}
	parts := map[int]*running{}
	var wg sync.WaitGroup
	bal := &state.Balancer{
		Leases: leases, Group: "nats:" + s.cfg.Stream + "/" + s.cfg.Durable, Owner: s.owner,
		Partitions: s.cfg.Partitions, TTL: s.cfg.LeaseTTL, Clock: s.clock, Logger: s.logger,
		Start: func(p int) {
			pctx, cancel := context.WithCancel(ctx)
			r := &running{cancel: cancel, done: make(chan struct{})}
			parts[p] = r
			wg.Go(func() {
				defer close(r.done)
				s.consume(pctx, js, out, hold{slots: slots, partition: p, pending: &r.pending})
			})
		},
		Stop: func(p int) { parts[p].cancel() },
		Idle: func(p int) bool {
			r := parts[p]
			select {
			case <-r.done:
				return r.pending.Load() == 0
			default:
				return false
			}
		},
	}
	s.mu.Lock()
	s.bal = bal
	s.mu.Unlock()
	s.setOnClose(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		bal.ReleaseAll(ctx)
		_ = leases.Close()
	})
	bal.Run(ctx)
	wg.Wait()
	return nil
}

// handle passes msg on, or dead-letters it when the source cannot handle it.
// It holds h until the message is resolved.
func (s *source) handle(ctx context.Context, out pipeline.Outlet, msg jetstream.Msg, h hold) {
	s.live.Add()
	if h.pending != nil {
		h.pending.Add(1)
	}
	md, err := msg.Metadata()
	if err != nil {
		m := pipeline.NewMessage(msg.Data(), s.poisonAck(msg, h))
		out.Fail(ctx, m, pipeline.WithReason(pipeline.ReasonInvalidPayload, fmt.Errorf("nats: not a JetStream message: %w", err)))
		return
	}
	if ctx.Err() != nil {
		s.ack(msg, h)(context.Canceled)
		return
	}
	meta := make(map[string]string, len(msg.Headers())+7)
	for k, v := range msg.Headers() {
		if len(v) > 0 {
			meta[k] = v[0]
		}
	}
	meta[MetaSubject] = msg.Subject()
	meta[MetaStream] = md.Stream
	meta[MetaStreamSeq] = strconv.FormatUint(md.Sequence.Stream, 10)
	meta[MetaConsumerSeq] = strconv.FormatUint(md.Sequence.Consumer, 10)
	meta[MetaDelivered] = strconv.FormatUint(md.NumDelivered, 10)
	meta[MetaReadEpoch] = h.epoch
	if h.partition >= 0 {
		meta[MetaPartition] = strconv.Itoa(h.partition)
	}

	var poison error
	switch {
	case s.cfg.MaxBytes > 0 && len(msg.Data()) > int(s.cfg.MaxBytes):
		poison = pipeline.WithReason(pipeline.ReasonInvalidPayload,
			fmt.Errorf("nats: body of %d bytes exceeds max_bytes %d", len(msg.Data()), s.cfg.MaxBytes))
	case s.cfg.MaxDeliver > 0 && md.NumDelivered > uint64(s.cfg.MaxDeliver):
		poison = pipeline.WithReason(pipeline.ReasonRetries,
			fmt.Errorf("nats: delivered %d times, max_deliver is %d", md.NumDelivered, s.cfg.MaxDeliver))
	}
	if poison != nil {
		m := pipeline.NewMessage(msg.Data(), s.poisonAck(msg, h))
		m.Meta = meta
		out.Fail(ctx, m, poison)
		return
	}
	m := pipeline.NewMessage(msg.Data(), s.ack(msg, h))
	m.Meta = meta
	_ = out.Send(ctx, m) // on a stop, Send has nacked m
}

// ack settles a message with the broker once the pipeline resolved it.
func (s *source) ack(msg jetstream.Msg, h hold) pipeline.AckFunc {
	return func(err error) {
		switch {
		case err == nil:
			err = msg.Ack()
		case errors.Is(err, pipeline.ErrAbandoned) || errors.Is(err, context.Canceled):
			// Stopping. Our last pull request may still be open on the
			// server for up to fetch_wait: a message redelivered into it
			// would wait out ack_wait, so let it expire first.
			err = msg.NakWithDelay(s.cfg.FetchWait + 100*time.Millisecond)
		case s.cfg.NakDelay > 0:
			err = msg.NakWithDelay(s.cfg.NakDelay)
		default:
			err = msg.Nak()
		}
		if err != nil {
			s.logger.Warn("nats: ack failed; the server will redeliver", "err", err)
		}
		h.done()
		s.live.Done()
	}
}

// poisonAck settles a message the source dead-lettered: Ack once the
// dead-letter sink took it, Term (no redelivery) otherwise.
func (s *source) poisonAck(msg jetstream.Msg, h hold) pipeline.AckFunc {
	return func(err error) {
		if err == nil {
			err = msg.Ack()
		} else {
			s.logger.Warn("nats: terminating a message the dead-letter path did not take", "subject", msg.Subject(), "err", err)
			err = msg.Term()
		}
		if err != nil {
			s.logger.Warn("nats: ack failed; the server will redeliver", "err", err)
		}
		h.done()
		s.live.Done()
	}
}

// consumer binds to, or creates, the durable consumer, retrying until it
// succeeds or ctx ends (then it returns nil).
func (s *source) consumer(ctx context.Context, js jetstream.JetStream, durable, filter string) jetstream.Consumer {
	for {
		c, err := s.setup(ctx, js, durable, filter)
		if err == nil {
			return c
		}
		if ctx.Err() != nil {
			return nil
		}
		s.logger.Warn("nats: consumer setup failed; retrying", "stream", s.cfg.Stream, "durable", durable, "err", err)
		s.pause(ctx)
	}
}

func (s *source) setup(ctx context.Context, js jetstream.JetStream, durable, filter string) (jetstream.Consumer, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if !s.cfg.Create {
		return js.Consumer(ctx, s.cfg.Stream, durable)
	}
	if len(s.cfg.Subjects) > 0 {
		_, err := js.Stream(ctx, s.cfg.Stream)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			_, err = js.CreateStream(ctx, jetstream.StreamConfig{
				Name:     s.cfg.Stream,
				Subjects: s.cfg.Subjects,
				Storage:  jetstream.FileStorage,
			})
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				err = nil // another process was first
			}
		}
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", s.cfg.Stream, err)
		}
	}
	cfg := jetstream.ConsumerConfig{
		Durable:       durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       s.cfg.AckWait,
		MaxAckPending: s.cfg.MaxAckPending,
		MaxDeliver:    -1,
		FilterSubject: filter,
	}
	if s.cfg.Rewind {
		return s.rewind(ctx, js, cfg)
	}
	return js.CreateOrUpdateConsumer(ctx, s.cfg.Stream, cfg)
}

// rewind binds to the durable consumer, first recreating it from its ack
// floor when messages are delivered but unacked: like a Kafka consumer
// restarting at its committed offset, the next pulls then replay in stream
// order from the first unacked message.
func (s *source) rewind(ctx context.Context, js jetstream.JetStream, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	c, err := js.Consumer(ctx, s.cfg.Stream, cfg.Durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return js.CreateConsumer(ctx, s.cfg.Stream, cfg)
	}
	if err != nil {
		return nil, err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return nil, err
	}
	if info.NumAckPending == 0 && info.NumRedelivered == 0 {
		return c, nil
	}
	if err := js.DeleteConsumer(ctx, s.cfg.Stream, cfg.Durable); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, err
	}
	cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, info.AckFloor.Stream+1
	s.logger.Info("nats: rewound the durable consumer to its ack floor", "stream", s.cfg.Stream, "durable", cfg.Durable,
		"from_seq", cfg.OptStartSeq, "unacked", info.NumAckPending)
	return js.CreateConsumer(ctx, s.cfg.Stream, cfg)
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
// the nacks of abandoned messages reach the server.
const closeGrace = 5 * time.Second

// Close lets the connection live until the messages already read are
// resolved, and no longer than closeGrace after ctx (the hard stop) ends.
func (s *source) Close(ctx context.Context) error {
	if s.live != nil {
		s.live.CloseAfter(ctx, closeGrace)
	}
	return nil
}
