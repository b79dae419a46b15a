package mqtt

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/connectors/internal/tracemeta"
	"github.com/pipe-dsl/pipe/internal/backoff"
	"github.com/pipe-dsl/pipe/pipeline"
)

type sinkConfig struct {
	Broker    string        `pipe:"broker" desc:"Broker URL: tcp:// (or mqtt://) host and port." example:"tcp://127.0.0.1:1883"`
	Topic     string        `pipe:"topic,required" desc:"Topic to publish to." example:"events/orders"`
	ClientID  string        `pipe:"client_id" desc:"Client identifier; default pipe-<pipeline>-<node>-<random>." example:"pipe-publisher-1"`
	Username  string        `pipe:"username" desc:"User name for the broker." example:"pipe"`
	Password  string        `pipe:"password,secret" desc:"Password for the broker; never printed." example:"${MQTT_PASSWORD}"`
	Retain    bool          `pipe:"retain" desc:"Publish with the retain flag." example:"false"`
	KeepAlive time.Duration `pipe:"keep_alive" desc:"Keep-alive interval." example:"30s" min:"1" max:"65535"`
	Reconnect time.Duration `pipe:"reconnect" desc:"Longest wait between reconnection attempts; they start at 100ms and double." example:"30s" min:"0.001"`
}

// sink publishes through one connection manager, started by the first
// Write; Write waits for the connection while it is down.
type sink struct {
	cfg    sinkConfig
	broker *url.URL

	mu sync.Mutex
	cm *autopaho.ConnectionManager
	// stop ends the connection manager's context.
	stop context.CancelFunc
	// onDial, if set, sees every new network connection (tests).
	onDial func(net.Conn)
}

var (
	_ pipeline.Sink   = (*sink)(nil)
	_ pipeline.Closer = (*sink)(nil)
)

func newSink(c *sinkConfig, env component.Env) (pipeline.Sink, error) {
	u, err := parseBroker(c.Broker)
	if err != nil {
		return nil, err
	}
	cfg := *c
	if cfg.ClientID == "" {
		var r [4]byte
		_, _ = crand.Read(r[:])
		cfg.ClientID = fmt.Sprintf("pipe-%s-%s-%s", env.Pipeline, env.Node, hex.EncodeToString(r[:]))
	}
	return &sink{cfg: cfg, broker: u}, nil
}

// Write publishes m, or every member of a batch concurrently, with QoS 1
// and returns once the broker acknowledged all of them. A reason code of
// 0x80 or above in a PUBACK is an error.
func (s *sink) Write(ctx context.Context, m *pipeline.Message) error {
	cm, err := s.manager()
	if err != nil {
		return err
	}
	if err := cm.AwaitConnection(ctx); err != nil {
		return fmt.Errorf("mqtt %s: not connected: %w", s.broker.Host, err)
	}
	members := m.Batch()
	if members == nil {
		return s.publish(ctx, cm, m)
	}
	errs := make([]error, len(members))
	var wg sync.WaitGroup
	for i, x := range members {
		wg.Go(func() { errs[i] = s.publish(ctx, cm, x) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *sink) publish(ctx context.Context, cm *autopaho.ConnectionManager, m *pipeline.Message) error {
	p := &paho.Publish{QoS: 1, Topic: s.cfg.Topic, Retain: s.cfg.Retain, Payload: m.Body}
	if meta := tracemeta.Outgoing(m); len(meta) > 0 {
		p.Properties = &paho.PublishProperties{}
		for k, v := range meta {
			if !strings.HasPrefix(k, "mqtt_") {
				p.Properties.User.Add(k, v)
			}
		}
	}
	resp, err := cm.Publish(ctx, p)
	if err != nil {
		return fmt.Errorf("mqtt %s: publish to %q: %w", s.broker.Host, s.cfg.Topic, err)
	}
	if resp != nil && resp.ReasonCode >= 0x80 {
		return fmt.Errorf("mqtt %s: publish to %q refused: reason code %#x", s.broker.Host, s.cfg.Topic, resp.ReasonCode)
	}
	return nil
}

// manager starts the connection manager on first use.
func (s *sink) manager() (*autopaho.ConnectionManager, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cm != nil {
		return s.cm, nil
	}
	policy := backoff.Policy{BaseDelay: 100 * time.Millisecond, MaxDelay: s.cfg.Reconnect, Jitter: backoff.EqualJitter}
	ctx, cancel := context.WithCancel(context.Background())
	cm, err := autopaho.NewConnection(ctx, autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{s.broker},
		KeepAlive:                     uint16(s.cfg.KeepAlive / time.Second),
		CleanStartOnInitialConnection: true,
		ConnectUsername:               s.cfg.Username,
		ConnectPassword:               []byte(s.cfg.Password),
		ReconnectBackoff: func(attempt int) time.Duration {
			if attempt == 0 {
				return 0
			}
			return policy.Delay(attempt, rand.Float64)
		},
		AttemptConnection: func(ctx context.Context, _ autopaho.ClientConfig, u *url.URL) (net.Conn, error) {
			c, err := dialBroker(ctx, u)
			if err == nil && s.onDial != nil {
				s.onDial(c)
			}
			if err != nil {
				return nil, err
			}
			return packets.NewThreadSafeConn(c), nil
		},
		ClientConfig: paho.ClientConfig{ClientID: s.cfg.ClientID},
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("mqtt %s: %w", s.broker.Host, err)
	}
	s.cm, s.stop = cm, cancel
	return cm, nil
}

// Close disconnects.
func (s *sink) Close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cm == nil {
		return nil
	}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := s.cm.Disconnect(dctx)
	s.stop()
	s.cm = nil
	return err
}
