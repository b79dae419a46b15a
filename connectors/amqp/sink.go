package amqp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/connectors/internal/tracemeta"
	"github.com/pipe-dsl/pipe/pipeline"
)

type sinkConfig struct {
	URL         string `pipe:"url,secret" desc:"Broker URL, credentials included; never printed." example:"${AMQP_URL}"`
	Exchange    string `pipe:"exchange" desc:"Exchange to publish to; empty is the default exchange, which routes by queue name." example:"events"`
	RoutingKey  string `pipe:"routing_key" desc:"Routing key; defaults to queue." example:"orders.created"`
	Queue       string `pipe:"queue" desc:"Queue to declare (durable) when declare is set, and the routing key when routing_key is empty." example:"orders"`
	Declare     bool   `pipe:"declare" desc:"Declare queue before the first publish." example:"true"`
	Persistent  bool   `pipe:"persistent" desc:"Publish with delivery mode 2 so durable queues keep messages across broker restarts." example:"true"`
	ContentType string `pipe:"content_type" desc:"Content type property of published messages." example:"application/json"`
}

// ErrNotConfirmed is the error of a publish the broker nacked, or whose
// channel closed before the confirm arrived.
var ErrNotConfirmed = errors.New("publish not confirmed by the broker")

// sink publishes on one confirm-mode channel shared by its workers; it
// connects on the first Write and again after a failure.
type sink struct {
	cfg   sinkConfig
	where string
	key   string
	name  string // the connection name

	mu   sync.Mutex
	conn *amqp091.Connection
	ch   *amqp091.Channel
	// onDial, if set, sees every new network connection (tests).
	onDial func(net.Conn)
}

var (
	_ pipeline.Sink   = (*sink)(nil)
	_ pipeline.Closer = (*sink)(nil)
)

func newSink(c *sinkConfig, env component.Env) (pipeline.Sink, error) {
	where, err := redact(c.URL)
	if err != nil {
		return nil, err
	}
	key := c.RoutingKey
	if key == "" {
		key = c.Queue
	}
	if key == "" && c.Exchange == "" {
		return nil, errors.New("routing_key or queue is required to publish to the default exchange")
	}
	if c.Declare && c.Queue == "" {
		return nil, errors.New("declare needs queue")
	}
	return &sink{cfg: *c, where: where, key: key, name: fmt.Sprintf("pipe %s/%s sink", env.Pipeline, env.Node)}, nil
}

// Write publishes m, or every member of a batch, then waits for the
// broker's confirms. It fails if any publish is not confirmed; the members
// already confirmed are then published again when the message is retried.
func (s *sink) Write(ctx context.Context, m *pipeline.Message) error {
	ch, err := s.channel()
	if err != nil {
		return err
	}
	members := m.Batch()
	if members == nil {
		members = []*pipeline.Message{m}
	}
	confirms := make([]*amqp091.DeferredConfirmation, 0, len(members))
	for _, x := range members {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, s.cfg.Exchange, s.key, false, false, s.publishing(x))
		if err != nil {
			s.reset(ch)
			return fmt.Errorf("amqp %s: publish: %w", s.where, err)
		}
		confirms = append(confirms, dc)
	}
	for _, dc := range confirms {
		ok, err := dc.WaitContext(ctx)
		if err != nil {
			return fmt.Errorf("amqp %s: waiting for confirm: %w", s.where, err)
		}
		if !ok {
			s.reset(ch)
			return fmt.Errorf("amqp %s: %w", s.where, ErrNotConfirmed)
		}
	}
	return nil
}

func (s *sink) publishing(m *pipeline.Message) amqp091.Publishing {
	p := amqp091.Publishing{Body: m.Body, ContentType: s.cfg.ContentType, Timestamp: m.Created}
	if s.cfg.Persistent {
		p.DeliveryMode = amqp091.Persistent
	}
	if meta := tracemeta.Outgoing(m); len(meta) > 0 {
		p.Headers = make(amqp091.Table, len(meta))
		for k, v := range meta {
			if !strings.HasPrefix(k, "amqp_") {
				p.Headers[k] = v
			}
		}
	}
	return p
}

// channel returns the open confirm-mode channel, connecting first if needed.
func (s *sink) channel() (*amqp091.Channel, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch != nil && !s.ch.IsClosed() {
		return s.ch, nil
	}
	s.closeLocked()
	conn, err := dial(s.cfg.URL, s.name, s.onDial)
	if err != nil {
		return nil, fmt.Errorf("amqp %s: %w", s.where, err)
	}
	ch, err := conn.Channel()
	if err == nil {
		err = ch.Confirm(false)
	}
	if err == nil && s.cfg.Declare {
		_, err = ch.QueueDeclare(s.cfg.Queue, true, false, false, false, nil)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("amqp %s: %w", s.where, err)
	}
	s.conn, s.ch = conn, ch
	return ch, nil
}

// reset drops ch if it is still the current channel, so the next Write
// reconnects.
func (s *sink) reset(ch *amqp091.Channel) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == ch {
		s.closeLocked()
	}
}

func (s *sink) closeLocked() {
	if s.conn != nil {
		s.conn.Close()
	}
	s.conn, s.ch = nil, nil
}

// Close closes the connection.
func (s *sink) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeLocked()
	return nil
}

// scrub removes url from err's text, in case a client error quotes it.
func scrub(err error, url string) error {
	if url == "" || !strings.Contains(err.Error(), url) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), url, "<url>"))
}
