package redis

import (
	"context"
	"fmt"
	"strings"
	"sync"

	goredis "github.com/redis/go-redis/v9"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/pipeline"
)

type sinkConfig struct {
	Addr     string `pipe:"addr" desc:"Redis server address, host:port." example:"127.0.0.1:6379"`
	Username string `pipe:"username" desc:"ACL user name." example:"pipe"`
	Password string `pipe:"password,secret" desc:"Password." example:"${REDIS_PASSWORD}"`
	DB       int    `pipe:"db" desc:"Database number." example:"0" min:"0"`
	Stream   string `pipe:"stream,required" desc:"Stream key to append to (XADD)." example:"orders.clean"`
	Field    string `pipe:"field" desc:"Entry field for the body." example:"body"`
	Meta     bool   `pipe:"meta" desc:"Write message metadata as further fields, except the redis_* keys a redis_streams source sets." example:"true"`
	MaxLen   int64  `pipe:"max_len" desc:"Trim the stream to about this many entries (MAXLEN ~) on every add; 0 never trims." example:"1000000" min:"0"`
}

func init() {
	component.Register(component.Sink("redis_streams",
		"Appends each message (each batch member, pipelined) to a Redis stream with XADD.",
		sinkConfig{Addr: DefaultAddr, Field: "body", Meta: true}, newSink))
}

// sink XADDs; the client connects on the first write.
type sink struct {
	cfg  sinkConfig
	name string
	once sync.Once
	rdb  *goredis.Client
}

var (
	_ pipeline.Sink   = (*sink)(nil)
	_ pipeline.Closer = (*sink)(nil)
)

func newSink(c *sinkConfig, env component.Env) (pipeline.Sink, error) {
	return &sink{cfg: *c, name: "pipe:" + env.Pipeline + "/" + env.Node}, nil
}

func (s *sink) client() *goredis.Client {
	s.once.Do(func() { s.rdb = newClient(s.cfg.Addr, s.cfg.Username, s.cfg.Password, s.cfg.DB, s.name) })
	return s.rdb
}

func (s *sink) Write(ctx context.Context, m *pipeline.Message) error {
	rdb := s.client()
	members := m.Batch()
	if members == nil {
		return s.wrap(rdb.XAdd(ctx, s.args(m)).Err())
	}
	cmds, err := rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, x := range members {
			p.XAdd(ctx, s.args(x))
		}
		return nil
	})
	if err != nil {
		return s.wrap(err)
	}
	for _, c := range cmds {
		if err := c.Err(); err != nil {
			return s.wrap(err)
		}
	}
	return nil
}

func (s *sink) wrap(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("redis: XADD %s: %w", s.cfg.Stream, err)
}

func (s *sink) args(m *pipeline.Message) *goredis.XAddArgs {
	values := make([]string, 0, 2+2*len(m.Meta))
	values = append(values, s.cfg.Field, string(m.Body))
	if s.cfg.Meta {
		for k, v := range m.Meta {
			if k != s.cfg.Field && !strings.HasPrefix(k, metaPrefix) {
				values = append(values, k, v)
			}
		}
	}
	return &goredis.XAddArgs{Stream: s.cfg.Stream, MaxLen: s.cfg.MaxLen, Approx: s.cfg.MaxLen > 0, Values: values}
}

func (s *sink) Close(context.Context) error {
	if s.rdb == nil {
		return nil
	}
	return s.rdb.Close()
}
