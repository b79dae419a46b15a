// Package nats holds the nats_jetstream source and sink: at-least-once
// delivery through a durable JetStream pull consumer, and publishing with
// acknowledgements.
package nats

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	natsgo "github.com/nats-io/nats.go"
)

// DefaultURL is the server a config without url connects to.
const DefaultURL = "nats://127.0.0.1:4222"

// Meta keys set by the source besides the message headers.
const (
	MetaSubject     = "nats_subject"
	MetaStream      = "nats_stream"
	MetaStreamSeq   = "nats_stream_seq"
	MetaConsumerSeq = "nats_consumer_seq"
	MetaDelivered   = "nats_delivered"
	// MetaPartition is the partition number (decimal) of a message read
	// by a partitioned source (partitions > 0); the durable window keys
	// its state per partition by it.
	MetaPartition = "nats_partition"
	// MetaReadEpoch changes whenever the source starts reading a durable
	// consumer again (a partition acquired, a consumer set up again or
	// rewound): a stateful stage that sees it change knows the messages
	// now start over from the consumer's ack floor.
	MetaReadEpoch = "nats_read_epoch"
)

// metaPrefix marks the keys the source derives from delivery; the sink does
// not publish them as headers.
const metaPrefix = "nats_"

// connect opens a connection that reconnects forever. The first attempt
// succeeds even while the server is down; requests then fail until it is up.
func connect(url, user, password, token, name string, logger *slog.Logger) (*natsgo.Conn, error) {
	opts := []natsgo.Option{
		natsgo.Name(name),
		natsgo.MaxReconnects(-1),
		natsgo.ReconnectWait(250 * time.Millisecond),
		natsgo.RetryOnFailedConnect(true),
		natsgo.DisconnectErrHandler(func(_ *natsgo.Conn, err error) {
			if err != nil {
				logger.Warn("nats: disconnected", "err", err)
			}
		}),
		natsgo.ReconnectHandler(func(c *natsgo.Conn) {
			logger.Info("nats: reconnected", "server", c.ConnectedUrlRedacted())
		}),
	}
	if user != "" {
		opts = append(opts, natsgo.UserInfo(user, password))
	}
	if token != "" {
		opts = append(opts, natsgo.Token(token))
	}
	if url == "" {
		url = DefaultURL
	}
	nc, err := natsgo.Connect(url, opts...)
	if err != nil {
		// The error may quote the URL, which may hold credentials.
		return nil, fmt.Errorf("nats: connect to %s: %w", redact(url), err)
	}
	return nc, nil
}

// redact drops user info from the servers of a URL list.
func redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, u := range parts {
		if at := strings.LastIndex(u, "@"); at >= 0 {
			scheme := ""
			if j := strings.Index(u, "://"); j >= 0 && j < at {
				scheme = u[:j+3]
			}
			parts[i] = scheme + "***@" + u[at+1:]
		}
	}
	return strings.Join(parts, ",")
}

// checkURLs reports the first entry of a comma-separated server list that
// does not parse as a NATS URL (a bare host:port means nats://host:port).
// The error names the entry by position only: a URL may hold credentials.
func checkURLs(list string) error {
	if list == "" {
		return nil
	}
	for i, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if !strings.Contains(s, "://") {
			s = "nats://" + s
		}
		u, err := url.Parse(s)
		if err != nil || u.Hostname() == "" {
			return fmt.Errorf("url: server %d does not parse as nats://host:port (value not shown)", i+1)
		}
	}
	return nil
}
