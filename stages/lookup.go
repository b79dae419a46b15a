package stages

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/expr"
	"github.com/pipe-dsl/pipe/internal/httpclient"
	"github.com/pipe-dsl/pipe/internal/lookup"
	"github.com/pipe-dsl/pipe/internal/lookup/store"
)

// ReasonLookupMissing is the dead-letter reason of a message whose key the
// store does not hold, under on_missing: dead_letter.
const ReasonLookupMissing = "lookup_missing"

type lookupConfig struct {
	Postgres  lookupPostgres `pipe:"postgres" desc:"Look keys up in PostgreSQL: one query per group of keys. Give exactly one of postgres, redis and http." example:"{dsn: ${PG_DSN}, query: SELECT id, name, tier FROM customers WHERE id = ANY($1), key_column: id}"`
	Redis     lookupRedis    `pipe:"redis" desc:"Look keys up in Redis: one MGET (GET) or one pipeline of HGETALLs (HGETALL) per group of keys." example:"{url: redis://127.0.0.1:6379/0, command: GET, key: '\"customer:\" + string(msg.customer_id)'}"`
	HTTP      lookupHTTP     `pipe:"http" desc:"Look keys up over HTTP: one GET per key, a group's requests in parallel; 404 means missing." example:"{url: '\"http://127.0.0.1:8080/customers/\" + string(msg.customer_id)'}"`
	Key       *expr.Program  `pipe:"key" desc:"CEL expression over the message: its lookup key, by whose text form results are cached and shared. Required for postgres; for redis and http it defaults to the Redis key or the URL. A null key is missing without a lookup." example:"msg.customer_id"`
	Into      string         `pipe:"into" desc:"Field of the JSON object body set to the result; a dotted key reaches a nested field. Without it the result's fields are merged into the body." example:"customer"`
	OnMissing lookupMissing  `pipe:"on_missing" shorthand:"action" desc:"What happens to a message whose key the store does not hold: keep (unchanged), drop, dead_letter (reason lookup_missing), or {default: CEL} to use a value instead." example:"dead_letter"`
	Cache     lookupCache    `pipe:"cache" desc:"LRU cache of results, found and missing; off unless ttl is set." example:"{ttl: 5m, negative_ttl: 30s, max_entries: 100000, refresh_ahead: 30s}"`
	Coalesce  lookupCoalesce `pipe:"coalesce" desc:"Groups the keys of concurrent messages (one per worker) that arrive within max_wait into one round trip; off while max_wait is 0." example:"{max_keys: 100, max_wait: 2ms}"`
	MaxConns  int            `pipe:"max_conns" desc:"Most connections open to the store at once; round trips beyond it wait for one." example:"8" min:"1"`
}

type lookupPostgres struct {
	DSN       string `pipe:"dsn,required,secret" desc:"Connection string, usually from the environment; never printed." example:"${PG_DSN}"`
	Query     string `pipe:"query,required" desc:"SELECT taking the group's keys as the array $1 (an int8[] when every key is an integer, a text[] otherwise; cast it for other types, e.g. ANY($1::uuid[]))." example:"SELECT id, name, tier FROM customers WHERE id = ANY($1)"`
	KeyColumn string `pipe:"key_column,required" desc:"Column of the query's rows holding the key, matched to each message's key by its text form. A row is the result as an object of its columns." example:"id"`
}

type lookupRedis struct {
	URL     string        `pipe:"url,required,secret" desc:"redis:// or rediss:// URL, with any password; never printed." example:"redis://127.0.0.1:6379/0"`
	Command string        `pipe:"command" desc:"GET reads a string (decoded if it is JSON); HGETALL reads a hash as an object of strings (empty means missing)." enum:"GET,HGETALL" example:"HGETALL"`
	Key     *expr.Program `pipe:"key" vars:"key" desc:"CEL expression over the message (and key, the lookup key) giving the Redis key; default: the lookup key as text." example:"\"customer:\" + string(msg.customer_id)"`
}

type lookupHTTP struct {
	URL         *expr.Program     `pipe:"url,required" vars:"key" desc:"CEL expression over the message (and key, the lookup key) giving the URL to GET (http or https)." example:"\"http://127.0.0.1:8080/customers/\" + string(msg.customer_id)"`
	Headers     map[string]string `pipe:"headers" desc:"Headers sent with every request. Do not put secrets here: use token." example:"{Accept: application/json}"`
	Token       string            `pipe:"token,secret" desc:"Bearer token sent as the Authorization header, usually from the environment; never printed." example:"${API_TOKEN}"`
	MaxResponse component.Size    `pipe:"max_response" desc:"Largest response body read; a larger one fails the round trip." example:"1MiB" min:"1"`
}

type lookupMissing struct {
	Action  string        `pipe:"action" desc:"keep passes the message on unchanged, drop drops it, dead_letter fails it with reason lookup_missing." enum:"keep,drop,dead_letter" example:"drop"`
	Default *expr.Program `pipe:"default" vars:"key" desc:"CEL expression over the message (and key) whose value stands in for the missing result." example:"{\"tier\": \"standard\"}"`
}

type lookupCache struct {
	TTL          time.Duration `pipe:"ttl" desc:"How long a found result is fresh; 0 turns the cache off." example:"5m" min:"0"`
	NegativeTTL  time.Duration `pipe:"negative_ttl" desc:"How long a missing key is remembered as missing; 0 asks the store every time." example:"30s" min:"0"`
	MaxEntries   int           `pipe:"max_entries" desc:"Most results held; the least recently used goes first." example:"100000" min:"1"`
	RefreshAhead time.Duration `pipe:"refresh_ahead" desc:"A found result read within this of its expiry is refreshed in the background, so hot keys never wait; 0 turns it off. Must be less than ttl." example:"30s" min:"0"`
	ServeStale   bool          `pipe:"serve_stale" desc:"When the store fails (down, breaker open, timeout), answer from an expired result if one is held (counted as stale_served)." example:"true"`
}

type lookupCoalesce struct {
	MaxKeys int           `pipe:"max_keys" desc:"Most keys in one round trip." example:"100" min:"1"`
	MaxWait time.Duration `pipe:"max_wait" desc:"How long the first key of a group waits for others; 0 sends each key alone." example:"2ms" min:"0"`
}

func init() {
	component.Register(component.Stage("lookup",
		"Enriches each message with the result of looking its key up in PostgreSQL, Redis or HTTP, through a TTL cache, one shared round trip per key in flight, coalesced groups and a bounded pool; retry, breaker and timeout guard each round trip.",
		lookupConfig{
			Redis:     lookupRedis{Command: "GET"},
			HTTP:      lookupHTTP{MaxResponse: 16 << 20},
			Cache:     lookupCache{MaxEntries: 100000},
			Coalesce:  lookupCoalesce{MaxKeys: 100},
			OnMissing: lookupMissing{Action: "keep"},
			MaxConns:  8,
		}, newLookup,
		component.WithBatching(component.BatchesReject)))
}

func newLookup(c *lookupConfig, env component.Env) (any, error) {
	var stores []string
	if c.Postgres.DSN != "" {
		stores = append(stores, "postgres")
	}
	if c.Redis.URL != "" {
		stores = append(stores, "redis")
	}
	if c.HTTP.URL != nil {
		stores = append(stores, "http")
	}
	if len(stores) != 1 {
		return nil, fmt.Errorf("give exactly one of postgres, redis and http, got %d (%s)", len(stores), strings.Join(stores, ", "))
	}
	if c.OnMissing.Default != nil && c.OnMissing.Action != "keep" && c.OnMissing.Action != "" {
		return nil, errors.New("on_missing: use either an action or default, not both")
	}
	if c.Key == nil && (len(stores) == 0 || stores[0] != "http") && c.Redis.Key == nil {
		return nil, errors.New("key: required, unless redis.key or http.url gives the address")
	}
	name := "pipe/" + env.Pipeline + "/" + env.Node
	l := &lookupStage{cfg: *c, kind: stores[0]}
	if c.Into != "" {
		l.into = strings.Split(c.Into, ".")
	}
	var st lookup.Store
	var err error
	switch l.kind {
	case "postgres":
		st, err = store.NewPostgres(c.Postgres.DSN, c.Postgres.Query, c.Postgres.KeyColumn, c.MaxConns, name)
	case "redis":
		st, err = store.NewRedis(c.Redis.URL, c.Redis.Command, c.MaxConns, name)
	case "http":
		st = store.NewHTTP(httpclient.New(httpclient.Config{
			MaxConns: c.MaxConns, Headers: c.HTTP.Headers, Token: c.HTTP.Token,
			MaxBody: int64(c.HTTP.MaxResponse), Now: env.Clock.Now,
		}))
	}
	if err != nil {
		return nil, err
	}
	l.lcfg = lookup.Config{
		TTL: c.Cache.TTL, NegativeTTL: c.Cache.NegativeTTL, MaxEntries: c.Cache.MaxEntries,
		RefreshAhead: c.Cache.RefreshAhead, ServeStale: c.Cache.ServeStale,
		MaxKeys: c.Coalesce.MaxKeys, MaxWait: c.Coalesce.MaxWait,
		Clock: env.Clock, Store: l.kind, Guard: l.guard,
	}
	if l.loader, err = lookup.New(st, l.lcfg); err != nil {
		_ = st.Close()
		return nil, errors.New(strings.TrimPrefix(err.Error(), "lookup: "))
	}
	return l, nil
}
