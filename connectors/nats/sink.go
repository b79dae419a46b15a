package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/connectors/internal/tracemeta"
	"github.com/pipe-dsl/pipe/expr"
	"github.com/pipe-dsl/pipe/pipeline"
)

type sinkConfig struct {
	URL      string        `pipe:"url" desc:"NATS server URLs, comma-separated." example:"nats://127.0.0.1:4222"`
	User     string        `pipe:"user" desc:"User name, with password." example:"pipe"`
	Password string        `pipe:"password,secret" desc:"Password for user." example:"${NATS_PASSWORD}"`
	Token    string        `pipe:"token,secret" desc:"Authentication token." example:"${NATS_TOKEN}"`
	Subject  string        `pipe:"subject,required" desc:"Subject to publish to; a stream must capture it." example:"orders.clean"`
	MsgID    *expr.Program `pipe:"msg_id" desc:"CEL expression for the Nats-Msg-Id header: the stream drops a message whose id it saw within its duplicate window, so redeliveries are not stored twice." example:"meta.nats_stream + \"-\" + meta.nats_stream_seq"`
	Headers  bool          `pipe:"headers" desc:"Publish message metadata (traceparent included) as headers, except the nats_* keys a nats_jetstream source sets." example:"true"`
	Timeout  time.Duration `pipe:"timeout" desc:"How long a write waits for the server's acks before it fails." example:"5s" min:"0.001"`
}

func init() {
	component.Register(component.Sink("nats_jetstream",
		"Publishes each message (each batch member) to a JetStream subject and acks it once the stream stored it.",
		sinkConfig{URL: DefaultURL, Headers: true, Timeout: 5 * time.Second}, newSink))
}

// sink publishes asynchronously and waits for every ack of a write; the
// connection opens on the first write.
type sink struct {
	cfg    sinkConfig
	name   string
	logger *slog.Logger

	mu sync.Mutex
	nc *natsgo.Conn
	js jetstream.JetStream
}

var (
	_ pipeline.Sink    = (*sink)(nil)
	_ pipeline.Closer  = (*sink)(nil)
	_ pipeline.Checker = (*sink)(nil)
)

func newSink(c *sinkConfig, env component.Env) (pipeline.Sink, error) {
	return &sink{
		cfg:    *c,
		name:   env.Pipeline + "/" + env.Node,
		logger: env.Logger.With("node", env.Node, "kind", "nats_jetstream"),
	}, nil
}

// Check fails when the url list does not parse; it does not connect.
func (s *sink) Check(context.Context) error { return checkURLs(s.cfg.URL) }

func (s *sink) jetStream() (jetstream.JetStream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.js != nil {
		return s.js, nil
	}
	nc, err := connect(s.cfg.URL, s.cfg.User, s.cfg.Password, s.cfg.Token, s.name, s.logger)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats: %w", err)
	}
	s.nc, s.js = nc, js
	return js, nil
}

// Write publishes m, or every member of a batch, and waits until the
// stream stored them all. In a batch, a member whose msg_id expression
// fails or whose body exceeds the server's max_payload is refused alone in
// a [pipeline.BatchError]; any other failure fails the whole batch.
func (s *sink) Write(ctx context.Context, m *pipeline.Message) error {
	js, err := s.jetStream()
	if err != nil {
		return err
	}
	members := m.Batch()
	if members == nil {
		members = []*pipeline.Message{m}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	errs := make([]error, len(members))
	futures := make([]jetstream.PubAckFuture, 0, len(members))
	for i, x := range members {
		msg, opts, err := s.natsMsg(x)
		if err != nil {
			errs[i] = err
			continue
		}
		f, err := js.PublishMsgAsync(msg, opts...)
		switch {
		case errors.Is(err, natsgo.ErrMaxPayload):
			errs[i] = pipeline.Permanent(fmt.Errorf("nats: publish to %s: %d bytes: %w", s.cfg.Subject, len(msg.Data), err))
			continue
		case err != nil:
			return fmt.Errorf("nats: publish to %s: %w", s.cfg.Subject, err)
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("nats: publish to %s: %w", s.cfg.Subject, err)
		case <-ctx.Done():
			return fmt.Errorf("nats: publish to %s: no ack: %w", s.cfg.Subject, ctx.Err())
		}
	}
	if m.Batch() == nil || !slices.ContainsFunc(errs, func(err error) bool { return err != nil }) {
		return errs[0]
	}
	return &pipeline.BatchError{Errs: errs}
}

func (s *sink) natsMsg(m *pipeline.Message) (*natsgo.Msg, []jetstream.PublishOpt, error) {
	msg := &natsgo.Msg{Subject: s.cfg.Subject, Data: m.Body}
	if s.cfg.Headers {
		for k, v := range tracemeta.Outgoing(m) {
			if !strings.HasPrefix(k, metaPrefix) {
				if msg.Header == nil {
					msg.Header = natsgo.Header{}
				}
				msg.Header[k] = []string{v}
			}
		}
	}
	if s.cfg.MsgID == nil {
		return msg, nil, nil
	}
	v, err := s.cfg.MsgID.EvalNative(&expr.Input{Raw: m.Body, Meta: m.Meta, Decoded: m.Decoded()})
	if err != nil {
		return nil, nil, pipeline.WithReason(pipeline.ReasonExpression, fmt.Errorf("msg_id: %w", err))
	}
	return msg, []jetstream.PublishOpt{jetstream.WithMsgID(fmt.Sprint(v))}, nil
}

func (s *sink) Close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nc == nil {
		return nil
	}
	// Every Write waited for its acks, so a flush only speeds up the
	// goodbye: skip it when disconnected, and let ctx (the hard stop) cut it.
	var err error
	if s.nc.IsConnected() {
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = s.nc.FlushWithContext(fctx)
		cancel()
	}
	s.nc.Close()
	s.nc, s.js = nil, nil
	if err != nil {
		return fmt.Errorf("nats: flush: %w", err)
	}
	return nil
}
