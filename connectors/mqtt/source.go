// Package mqtt provides the mqtt source and sink (MQTT 5, QoS 1). The
// source keeps a persistent session and acks each PUBLISH only once the
// pipeline has delivered or dead-lettered it; the sink returns once the
// broker sent PUBACK.
package mqtt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"github.com/eclipse/paho.golang/paho/session/state"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/internal/backoff"
	"github.com/pipe-dsl/pipe/pipeline"
)

// sendAcksInterval is how often paho sends the PUBACKs that became due.
const sendAcksInterval = 10 * time.Millisecond

// DefaultBroker is the broker of a config that names none.
const DefaultBroker = "tcp://127.0.0.1:1883"

type sourceConfig struct {
	Broker   string `pipe:"broker" desc:"Broker URL: tcp:// (or mqtt://) host and port." example:"tcp://127.0.0.1:1883"`
	Topic    string `pipe:"topic,required" desc:"Topic filter to subscribe to, wildcards allowed." example:"sensors/+/temperature"`
	ClientID string `pipe:"client_id" desc:"Client identifier; it names the broker-side session, so keep it stable across restarts. Default pipe-<pipeline>-<node>." example:"pipe-ingest-1"`
	Username string `pipe:"username" desc:"User name for the broker." example:"pipe"`
	Password string `pipe:"password,secret" desc:"Password for the broker; never printed." example:"${MQTT_PASSWORD}"`
	// CleanStart false keeps the session, and so the unacked messages.
	CleanStart    bool          `pipe:"clean_start" desc:"Discard the broker's session on the first connection. Leave false: the session holds the messages not yet acked, which the broker redelivers." example:"false"`
	SessionExpiry time.Duration `pipe:"session_expiry" desc:"How long the broker keeps the session (subscription and unacked messages) while the pipeline is disconnected." example:"1h" min:"1" max:"4294967295"`
	InFlight      int           `pipe:"in_flight" desc:"Receive Maximum: most unacked messages the broker sends ahead; bounds what is in flight in the pipeline." example:"128" min:"1" max:"65535"`
	KeepAlive     time.Duration `pipe:"keep_alive" desc:"Keep-alive interval." example:"30s" min:"1" max:"65535"`
	Reconnect     time.Duration `pipe:"reconnect" desc:"Longest wait between reconnection attempts; they start at 100ms and double." example:"30s" min:"0.001"`
}

func init() {
	component.Register(component.Source("mqtt",
		"Subscribes with QoS 1 on a persistent session and acks each message (in order of receipt) once the pipeline delivered or dead-lettered it; a nack reconnects so the broker redelivers, and only the failed messages go through the pipeline again.",
		sourceConfig{Broker: DefaultBroker, SessionExpiry: time.Hour, InFlight: pipeline.DefaultBuffer, KeepAlive: 30 * time.Second, Reconnect: 30 * time.Second},
		newSource))
	component.Register(component.Sink("mqtt",
		"Publishes with QoS 1; Write returns once the broker acknowledged (PUBACK) every message.",
		sinkConfig{Broker: DefaultBroker, KeepAlive: 30 * time.Second, Reconnect: 30 * time.Second},
		newSink))
}

type source struct {
	cfg    sourceConfig
	broker *url.URL
	clock  pipeline.Clock
	logger *slog.Logger

	// onDial, if set, sees every new network connection (tests).
	onDial func(net.Conn)
	// bg counts sessions still waiting for acks after Read returned.
	bg sync.WaitGroup

	mu   sync.Mutex
	conn net.Conn // the current connection, once it is up
	// dialed is the connection being established: closing it before paho's
	// Connect returns races inside paho (Connect against its shutdown), so
	// a nack that comes then sets closeOnUp instead.
	dialed    net.Conn
	closeOnUp bool
	client    *paho.Client // the client that delivered the latest message
	streak    int          // nacks since the last ack: slows reconnection

	// redo keeps redelivered copies of delivered messages out of the
	// pipeline.
	redo redeliveries

	// sent receives a value (if there is room) whenever paho sends a
	// PUBACK. paho calls the session's Ack holding its ack tracker's lock,
	// so nothing that calls into paho may block it.
	sent chan struct{}
}

var _ pipeline.Source = (*source)(nil)

func newSource(c *sourceConfig, env component.Env) (pipeline.Source, error) {
	u, err := parseBroker(c.Broker)
	if err != nil {
		return nil, err
	}
	cfg := *c
	if cfg.ClientID == "" {
		cfg.ClientID = fmt.Sprintf("pipe-%s-%s", env.Pipeline, env.Node)
	}
	return &source{cfg: cfg, broker: u, clock: clockOr(env.Clock),
		logger: loggerOr(env.Logger).With("source", "mqtt", "node", env.Node), sent: make(chan struct{}, 1)}, nil
}

// Read subscribes and passes messages on until ctx is cancelled. The
// connection manager reconnects by itself; messages not acked when a
// connection is lost are redelivered by the broker on the next one, so a
// message may reach the pipeline twice. After ctx is cancelled the
// connection stays up in the background until every message passed on is
// resolved and its PUBACK sent.
func (s *source) Read(ctx context.Context, out pipeline.Outlet) error {
	incoming := make(chan paho.PublishReceived, s.cfg.InFlight)
	subErr := make(chan error, 1)
	// connCtx outlives ctx: acks of messages in flight still need it.
	connCtx, cancelConn := context.WithCancel(context.WithoutCancel(ctx))
	ccfg := s.clientConfig()
	ccfg.OnConnectionUp = func(cm *autopaho.ConnectionManager, ca *paho.Connack) {
		s.mu.Lock()
		s.conn = s.dialed
		if s.closeOnUp {
			s.closeOnUp = false
			s.conn.Close()
			s.conn = nil
		}
		s.mu.Unlock()
		if !ca.SessionPresent {
			s.redo.reset()
		}
		// Subscribing again on a resumed session is harmless.
		go func() {
			sa, err := cm.Subscribe(connCtx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: s.cfg.Topic, QoS: 1}}})
			if err == nil && len(sa.Reasons) > 0 && sa.Reasons[0] >= 0x80 {
				err = fmt.Errorf("subscribe %q refused: reason code %#x", s.cfg.Topic, sa.Reasons[0])
				select {
				case subErr <- err:
				default:
				}
			}
			if err != nil && connCtx.Err() == nil {
				s.logger.Warn("mqtt subscribe failed", "topic", s.cfg.Topic, "err", err)
			}
		}()
	}
	ccfg.OnPublishReceived = []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
		s.mu.Lock()
		s.client = pr.Client
		s.mu.Unlock()
		select {
		case incoming <- pr:
		case <-ctx.Done(): // not acked: redelivered in the next session
		case <-pr.Client.Done():
		}
		return true, nil
	}}
	cm, err := autopaho.NewConnection(connCtx, ccfg)
	if err != nil {
		cancelConn()
		return fmt.Errorf("mqtt %s: %w", s.broker.Host, err)
	}
	var inflight sync.WaitGroup
	// stop leaves the connection up until the messages in flight are
	// resolved and their PUBACKs sent.
	stop := func() {
		s.bg.Go(func() {
			defer cancelConn()
			inflight.Wait()
			s.awaitFlush(cm)
			dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = cm.Disconnect(dctx)
		})
	}
	for {
		select {
		case <-ctx.Done():
			stop()
			return nil
		case err := <-subErr:
			_ = cm.Disconnect(context.Background())
			cancelConn()
			return fmt.Errorf("mqtt %s: %w", s.broker.Host, err)
		case pr := <-incoming:
			if !s.redo.admit(pr) {
				continue // a copy of a message the pipeline has or had
			}
			inflight.Add(1)
			m := pipeline.NewMessage(pr.Packet.Payload, s.acker(pr, &inflight))
			m.Meta = publishMeta(pr.Packet)
			m.Created = s.clock.Now()
			if out.Send(ctx, m) != nil {
				// The pipeline is stopping (Send nacked m).
				stop()
				return nil
			}
		}
	}
}

// acker hands a successful ack to paho, which sends PUBACKs in order of
// receipt (as MQTT requires) once every earlier message is acked too; an
// ack for a connection that is gone goes nowhere, and the broker
// redelivers the message, whose copy [redeliveries] acks without passing
// it on. A nack cannot be sent in MQTT: it drops the connection instead,
// and the broker redelivers every unacked message of the session; of
// those, only the failed ones go through the pipeline again.
func (s *source) acker(pr paho.PublishReceived, inflight *sync.WaitGroup) pipeline.AckFunc {
	return func(err error) {
		defer inflight.Done()
		dup := s.redo.resolved(pr.Packet, err == nil)
		if err == nil {
			s.mu.Lock()
			s.streak = 0
			s.mu.Unlock()
			_ = pr.Client.Ack(pr.Packet)
			if dup != nil {
				_ = dup.Client.Ack(dup.Packet)
			}
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.streak++
		if pr.Client == s.client || dup != nil && dup.Client == s.client {
			s.logger.Debug("mqtt message nacked; reconnecting for redelivery", "err", err)
			// Messages of this client no longer match: its connection is
			// going, and their copies come on the next one.
			s.client = nil
			if s.conn == nil {
				s.closeOnUp = true // the connection is still being set up
				return
			}
			s.conn.Close()
			s.conn = nil
		}
	}
}

// awaitFlush waits until paho has sent the PUBACKs of the acks handed to
// it (it sends them on a ticker): until none was sent for a few ticks, or
// for a second at most.
func (s *source) awaitFlush(cm *autopaho.ConnectionManager) {
	const quiet = 5 * sendAcksInterval
	limit := s.clock.NewTimer(time.Second)
	defer limit.Stop()
	idle := s.clock.NewTimer(quiet)
	defer idle.Stop()
	for {
		select {
		case <-s.sent:
			idle.Reset(quiet)
		case <-idle.C():
			return
		case <-limit.C():
			return
		case <-cm.Done():
			return
		}
	}
}

func (s *source) clientConfig() autopaho.ClientConfig {
	policy := backoff.Policy{BaseDelay: 100 * time.Millisecond, MaxDelay: s.cfg.Reconnect, Jitter: backoff.EqualJitter}
	expiry := uint32(s.cfg.SessionExpiry / time.Second)
	receiveMax := uint16(s.cfg.InFlight)
	return autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{s.broker},
		KeepAlive:                     uint16(s.cfg.KeepAlive / time.Second),
		CleanStartOnInitialConnection: s.cfg.CleanStart,
		SessionExpiryInterval:         expiry,
		ConnectUsername:               s.cfg.Username,
		ConnectPassword:               []byte(s.cfg.Password),
		ReconnectBackoff: func(attempt int) time.Duration {
			s.mu.Lock()
			n := attempt + s.streak
			s.mu.Unlock()
			if n == 0 {
				return 0
			}
			return policy.Delay(n, rand.Float64)
		},
		ConnectPacketBuilder: func(c *paho.Connect, _ *url.URL) (*paho.Connect, error) {
			if c.Properties == nil {
				c.Properties = &paho.ConnectProperties{}
			}
			c.Properties.ReceiveMaximum = &receiveMax
			return c, nil
		},
		AttemptConnection: func(ctx context.Context, _ autopaho.ClientConfig, u *url.URL) (net.Conn, error) {
			c, err := dialBroker(ctx, u)
			if err != nil {
				return nil, err
			}
			if s.onDial != nil {
				s.onDial(c)
			}
			s.mu.Lock()
			s.dialed, s.conn = c, nil
			s.mu.Unlock()
			return packets.NewThreadSafeConn(c), nil
		},
		OnConnectError: func(err error) { s.logger.Warn("mqtt connect failed", "broker", s.broker.Host, "err", err) },
		ClientConfig: paho.ClientConfig{
			ClientID:                   s.cfg.ClientID,
			EnableManualAcknowledgment: true,
			SendAcksInterval:           sendAcksInterval,
			Session:                    &countingSession{State: state.NewInMemory(), s: s},
		},
	}
}

// countingSession tells the source when paho sends PUBACKs, so that a
// stopping source can wait for the last ones.
type countingSession struct {
	*state.State
	s *source
}

func (c *countingSession) Ack(pb *packets.Publish) error {
	err := c.State.Ack(pb)
	if err == nil {
		c.s.redo.forget(pb.PacketID)
	}
	select {
	case c.s.sent <- struct{}{}:
	default:
	}
	return err
}

// publishMeta returns the user properties of p, with its topic under
// mqtt_topic and its content type, if any, under mqtt_content_type.
func publishMeta(p *paho.Publish) map[string]string {
	meta := map[string]string{"mqtt_topic": p.Topic}
	if p.Properties != nil {
		for _, up := range p.Properties.User {
			meta[up.Key] = up.Value
		}
		if p.Properties.ContentType != "" {
			meta["mqtt_content_type"] = p.Properties.ContentType
		}
	}
	return meta
}

func parseBroker(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return nil, errors.New("broker: want a URL such as tcp://127.0.0.1:1883")
	}
	switch u.Scheme {
	case "tcp", "mqtt":
	default:
		return nil, fmt.Errorf("broker: scheme %q not supported (tcp, mqtt)", u.Scheme)
	}
	if u.User != nil {
		return nil, errors.New("broker: put credentials in username and password, not in the URL")
	}
	if u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), "1883")
	}
	return u, nil
}

func dialBroker(ctx context.Context, u *url.URL) (net.Conn, error) {
	var d net.Dialer
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return d.DialContext(ctx, "tcp", u.Host)
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
