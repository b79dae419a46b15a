// Package amqp provides the amqp source and sink for RabbitMQ (AMQP 0-9-1):
// the source acks a delivery only once the pipeline has delivered or
// dead-lettered it, the sink returns only once the broker confirmed.
package amqp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/internal/backoff"
	"github.com/pipe-dsl/pipe/pipeline"
)

// DefaultURL is the broker of a config that names none.
const DefaultURL = "amqp://guest:guest@127.0.0.1:5672/"

type sourceConfig struct {
	URL      string `pipe:"url,secret" desc:"Broker URL, credentials included; never printed." example:"${AMQP_URL}"`
	Queue    string `pipe:"queue,required" desc:"Queue to consume from." example:"orders"`
	Declare  bool   `pipe:"declare" desc:"Declare the queue (durable) if it does not exist." example:"true"`
	Prefetch int    `pipe:"prefetch" desc:"Most unacked deliveries the broker sends ahead; bounds what is in flight in the pipeline." example:"128" min:"1" max:"65535"`
	Consumer string `pipe:"consumer" desc:"Consumer tag; empty means a random one." example:"pipe-orders"`
	// Reconnect bounds the wait between reconnection attempts.
	Reconnect time.Duration `pipe:"reconnect" desc:"Longest wait between reconnection attempts after the connection is lost; they start at 100ms and double." example:"30s" min:"0.001"`
}

func init() {
	component.Register(component.Source("amqp",
		"Consumes a RabbitMQ queue with manual acks: a delivery is acked once the pipeline delivered or dead-lettered it and nacked (requeued) otherwise; reconnects when the connection is lost.",
		sourceConfig{URL: DefaultURL, Prefetch: pipeline.DefaultBuffer, Reconnect: 30 * time.Second}, newSource))
	component.Register(component.Sink("amqp",
		"Publishes to a RabbitMQ exchange in confirm mode: Write returns once the broker confirmed every message (a batch is published, then confirmed together).",
		sinkConfig{URL: DefaultURL, Persistent: true}, newSink))
}

type source struct {
	cfg    sourceConfig
	clock  pipeline.Clock
	logger *slog.Logger
	where  string // the broker without credentials, for logs and errors
	name   string // the connection name

	// onDial, if set, sees every new network connection (tests).
	onDial func(net.Conn)
	// bg counts connections still waiting for acks after Read returned.
	bg sync.WaitGroup
}

var _ pipeline.Source = (*source)(nil)

func newSource(c *sourceConfig, env component.Env) (pipeline.Source, error) {
	where, err := redact(c.URL)
	if err != nil {
		return nil, err
	}
	return &source{cfg: *c, clock: clockOr(env.Clock), logger: loggerOr(env.Logger).With("source", "amqp", "node", env.Node), where: where,
		name: fmt.Sprintf("pipe %s/%s source", env.Pipeline, env.Node)}, nil
}

// Read consumes until ctx is cancelled, reconnecting with backoff when the
// connection is lost. Deliveries in flight on a lost connection are
// redelivered by the broker, so a message may reach the pipeline twice.
// Errors that a reconnection cannot fix (no such queue, access refused)
// end Read.
func (s *source) Read(ctx context.Context, out pipeline.Outlet) error {
	policy := backoff.Policy{BaseDelay: 100 * time.Millisecond, MaxDelay: s.cfg.Reconnect, Jitter: backoff.EqualJitter}
	for failures := 0; ; {
		consumed, err := s.consume(ctx, out)
		if ctx.Err() != nil || errors.Is(err, errStopped) {
			return nil
		}
		if permanent(err) {
			return fmt.Errorf("amqp %s queue %q: %w", s.where, s.cfg.Queue, err)
		}
		if consumed {
			failures = 0
		}
		failures++
		wait := policy.Delay(failures, rand.Float64)
		s.logger.Warn("amqp connection lost; reconnecting", "broker", s.where, "in", wait, "err", err)
		t := s.clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C():
		}
	}
}

// consume runs one connection. It reports whether any delivery arrived, and
// why it ended: nil at the soft stop, otherwise the cause.
func (s *source) consume(ctx context.Context, out pipeline.Outlet) (bool, error) {
	conn, err := dial(s.cfg.URL, s.name, s.onDial)
	if err != nil {
		return false, err
	}
	lost := conn.NotifyClose(make(chan *amqp091.Error, 1))
	ch, err := conn.Channel()
	if err == nil {
		err = ch.Qos(s.cfg.Prefetch, 0, false)
	}
	if err == nil && s.cfg.Declare {
		_, err = ch.QueueDeclare(s.cfg.Queue, true, false, false, false, nil)
	}
	// The tag is needed to cancel the consumer at the stop.
	tag := s.cfg.Consumer
	if tag == "" {
		tag = fmt.Sprintf("pipe-%x", rand.Uint64())
	}
	var deliveries <-chan amqp091.Delivery
	if err == nil {
		deliveries, err = ch.Consume(s.cfg.Queue, tag, false, false, false, false, nil)
	}
	if err != nil {
		conn.Close()
		return false, err
	}
	var (
		inflight sync.WaitGroup
		got      bool
	)
	// stop cancels the consumer and leaves the connection open until the
	// last delivery in flight is acked. Deliveries sent ahead and not yet
	// read are requeued when it closes.
	stop := func() {
		_ = ch.Cancel(tag, false)
		s.bg.Go(func() {
			inflight.Wait()
			conn.Close()
		})
	}
	for {
		select {
		case <-ctx.Done():
			stop()
			return got, nil
		case err := <-lost:
			if err == nil {
				return got, amqp091.ErrClosed
			}
			return got, err
		case d, ok := <-deliveries:
			if !ok {
				conn.Close()
				if err := <-lost; err != nil {
					return got, err
				}
				return got, errors.New("consumer cancelled by the broker")
			}
			got = true
			inflight.Add(1)
			m := pipeline.NewMessage(d.Body, s.acker(d, &inflight))
			m.Meta = deliveryMeta(&d)
			m.Created = s.clock.Now()
			if out.Send(ctx, m) != nil {
				// The pipeline is stopping (Send nacked m).
				stop()
				return got, errStopped
			}
		}
	}
}

// errStopped ends a connection when the pipeline no longer accepts messages.
var errStopped = errors.New("pipeline stopped")

// acker acks d on success and requeues it otherwise. An ack on a lost
// connection fails harmlessly: the broker requeues d itself.
func (s *source) acker(d amqp091.Delivery, inflight *sync.WaitGroup) pipeline.AckFunc {
	return func(err error) {
		defer inflight.Done()
		var aerr error
		if err == nil {
			aerr = d.Ack(false)
		} else {
			aerr = d.Nack(false, true)
		}
		if aerr != nil {
			s.logger.Debug("amqp ack on a closed channel; the broker redelivers", "err", aerr)
		}
	}
}

// deliveryMeta returns d's headers as strings, with the routing key,
// exchange and standard properties under amqp_* keys.
func deliveryMeta(d *amqp091.Delivery) map[string]string {
	meta := make(map[string]string, len(d.Headers)+4)
	for k, v := range d.Headers {
		switch v := v.(type) {
		case string:
			meta[k] = v
		case []byte:
			meta[k] = string(v)
		default:
			meta[k] = fmt.Sprint(v)
		}
	}
	meta["amqp_exchange"] = d.Exchange
	meta["amqp_routing_key"] = d.RoutingKey
	if d.Redelivered {
		meta["amqp_redelivered"] = strconv.FormatBool(true)
	}
	if d.MessageId != "" {
		meta["amqp_message_id"] = d.MessageId
	}
	if d.ContentType != "" {
		meta["amqp_content_type"] = d.ContentType
	}
	return meta
}

// permanent reports errors that reconnecting does not fix.
func permanent(err error) bool {
	var ae *amqp091.Error
	if errors.As(err, &ae) {
		switch ae.Code {
		case amqp091.NotFound, amqp091.AccessRefused, amqp091.PreconditionFailed, amqp091.NotAllowed:
			return true
		}
	}
	return false
}

// dial connects to url, telling onDial about the network connection. name
// is the connection name the management UI and rabbitmqctl show.
func dial(url, name string, onDial func(net.Conn)) (*amqp091.Connection, error) {
	d := amqp091.DefaultDial(10 * time.Second)
	props := amqp091.NewConnectionProperties()
	props.SetClientConnectionName(name)
	conn, err := amqp091.DialConfig(url, amqp091.Config{
		Heartbeat:  10 * time.Second,
		Properties: props,
		Dial: func(network, addr string) (net.Conn, error) {
			c, err := d(network, addr)
			if err == nil && onDial != nil {
				onDial(c)
			}
			return c, err
		},
	})
	if err != nil {
		// amqp091's errors do not contain the URL, but be sure.
		return nil, scrub(err, url)
	}
	return conn, nil
}

// redact returns uri as scheme://host:port/vhost, without credentials.
func redact(uri string) (string, error) {
	u, err := amqp091.ParseURI(uri)
	if err != nil {
		return "", errors.New("url: not a valid amqp:// or amqps:// URL")
	}
	vhost := url.PathEscape(u.Vhost)
	if u.Vhost == "/" {
		vhost = ""
	}
	return fmt.Sprintf("%s://%s/%s", u.Scheme, net.JoinHostPort(u.Host, strconv.Itoa(u.Port)), vhost), nil
}

func clockOr(c pipeline.Clock) pipeline.Clock {
	if c == nil {
		return pipeline.SystemClock
	}
	return c
}

func loggerOr(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.Default()
	}
	return l
}
