package dsl

import (
	"gopkg.in/yaml.v3"

	"github.com/pipe-dsl/pipe/state"
	"github.com/pipe-dsl/pipe/state/pgstate"
	"github.com/pipe-dsl/pipe/state/redisstate"
)

// The top-level `state:` block names the durable store shared by every
// stateful stage:
//
//	state:
//	  redis: {url: "redis://127.0.0.1:6379/0", prefix: "orders:"}
//	  # or: postgres: {dsn: "${PG_DSN}", table: pipe_state}
//	  checkpoint_interval: 1s
//
// Parsing checks it and builds a state.Backend, which does no I/O: the
// store is reached only when the pipeline runs. The URL and DSN may hold
// passwords: no error ever quotes them.

var (
	stateKeys    = []string{"redis", "postgres", "checkpoint_interval"}
	redisKeys    = []string{"url", "prefix"}
	postgresKeys = []string{"dsn", "table"}
)

func (p *parser) parseState(v *yaml.Node) state.Backend {
	if v.Kind != yaml.MappingNode {
		p.errorf(v, "state must be a mapping with redis or postgres, not %s", kindName(v))
		return nil
	}
	var (
		backend  state.Backend
		interval = state.DefaultCheckpointInterval
		stores   []*yaml.Node
	)
	p.pairs(v, func(k, v *yaml.Node) {
		switch k.Value {
		case "redis":
			stores = append(stores, k)
			backend = p.redisState(v)
		case "postgres":
			stores = append(stores, k)
			backend = p.postgresState(v)
		case "checkpoint_interval":
			d, err := ParseDuration(v.Value)
			if v.Kind != yaml.ScalarNode || err != nil {
				p.errorf(v, "state.checkpoint_interval: %v", durationErr(err, v))
				return
			}
			if d <= 0 {
				p.errorf(v, "state.checkpoint_interval must be > 0")
				return
			}
			interval = d
		default:
			p.unknownKey(k, "state key", stateKeys)
		}
	})
	switch {
	case len(stores) == 0:
		p.errorf(v, "state needs a store: redis: {url: ...} or postgres: {dsn: ...}")
		return nil
	case len(stores) > 1:
		p.errorf(stores[1], "state has one store: redis or postgres, not both")
		return nil
	}
	switch b := backend.(type) {
	case *redisstate.Backend:
		b.Interval = interval
	case *pgstate.Backend:
		b.Interval = interval
	}
	return backend
}

// secret reads a URL or DSN: a string whose value is never shown.
func (p *parser) secret(v *yaml.Node, what string) string {
	if v.Kind != yaml.ScalarNode || v.Tag != "!!str" || v.Value == "" {
		p.errorf(v, "%s: expected a non-empty string, got %s", what, kindName(v))
		return ""
	}
	return v.Value
}

func (p *parser) redisState(v *yaml.Node) state.Backend {
	if v.Kind != yaml.MappingNode {
		p.errorf(v, "state.redis must be a mapping with url and prefix, not %s", kindName(v))
		return nil
	}
	b := &redisstate.Backend{Prefix: "pipe:" + p.c.Name + ":"}
	var url *yaml.Node
	p.pairs(v, func(k, v *yaml.Node) {
		switch k.Value {
		case "url":
			url = v
			if b.URL = p.secret(v, "state.redis.url"); b.URL != "" {
				if err := redisstate.CheckURL(b.URL); err != nil {
					p.errorf(v, "%v (value not shown: it may hold a password)", err)
				}
			}
		case "prefix":
			b.Prefix = p.str(v, "state.redis.prefix")
		default:
			p.unknownKey(k, "state.redis key", redisKeys)
		}
	})
	if url == nil {
		p.errorf(v, "state.redis needs url, e.g. redis://127.0.0.1:6379/0")
	}
	return b
}

func (p *parser) postgresState(v *yaml.Node) state.Backend {
	if v.Kind != yaml.MappingNode {
		p.errorf(v, "state.postgres must be a mapping with dsn and table, not %s", kindName(v))
		return nil
	}
	b := &pgstate.Backend{Table: "pipe_state"}
	var dsn *yaml.Node
	p.pairs(v, func(k, v *yaml.Node) {
		switch k.Value {
		case "dsn":
			dsn = v
			if b.DSN = p.secret(v, "state.postgres.dsn"); b.DSN != "" {
				if err := pgstate.CheckDSN(b.DSN); err != nil {
					p.errorf(v, "%v (value not shown: it may hold a password)", err)
				}
			}
		case "table":
			if b.Table = p.str(v, "state.postgres.table"); b.Table != "" {
				if err := pgstate.CheckTable(b.Table); err != nil {
					p.errorf(v, "%v", err)
				}
			}
		default:
			p.unknownKey(k, "state.postgres key", postgresKeys)
		}
	})
	if dsn == nil {
		p.errorf(v, "state.postgres needs dsn, e.g. ${PG_DSN}")
	}
	return b
}
