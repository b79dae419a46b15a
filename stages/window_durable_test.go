package stages

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/jackc/pgx/v5"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/internal/servicetest"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
	"github.com/pipe-dsl/pipe/state"
	"github.com/pipe-dsl/pipe/state/pgstate"
	"github.com/pipe-dsl/pipe/state/redisstate"
)

// redisTestPrefix skips t when Redis is down (fails under
// PIPE_REQUIRE_SERVICES=1) and deletes every key under prefix after it.
func redisTestPrefix(t testing.TB, prefix string) string {
	t.Helper()
	rdb := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"})
	t.Cleanup(func() { rdb.Close() })
	if err := rdb.Ping(t.Context()).Err(); err != nil {
		servicetest.Unavailable(t, "Redis on 127.0.0.1:6379", err)
	}
	t.Cleanup(func() {
		if keys, _ := rdb.Keys(context.Background(), prefix+"*").Result(); len(keys) > 0 {
			rdb.Del(context.Background(), keys...)
		}
	})
	return prefix
}

// durableBackends returns the real Redis and PostgreSQL backends, each
// with names unique to the test.
func durableBackends(t testing.TB) map[string]func(t testing.TB) state.Backend {
	id := time.Now().UnixNano()
	return map[string]func(t testing.TB) state.Backend{
		"redis": func(t testing.TB) state.Backend {
			prefix := redisTestPrefix(t, fmt.Sprintf("pipe-test-window:%d:", id))
			return &redisstate.Backend{URL: "redis://127.0.0.1:6379/0", Prefix: prefix, Interval: time.Second}
		},
		"postgres": func(t testing.TB) state.Backend {
			const dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
			conn, err := pgx.Connect(t.Context(), dsn)
			if err != nil {
				servicetest.Unavailable(t, "PostgreSQL on 127.0.0.1:5432", err)
			}
			table := fmt.Sprintf("pipe_state_window_%d", id)
			t.Cleanup(func() {
				for _, s := range []string{"", "_meta", "_keys"} {
					conn.Exec(context.Background(), "DROP TABLE IF EXISTS "+table+s)
				}
				conn.Close(context.Background())
			})
			return &pgstate.Backend{DSN: dsn, Table: table, Interval: time.Second}
		},
	}
}

// tableOutlet is an idempotent sink: it upserts each result by (key,
// window_start), like the postgres sink's on_conflict, and acks it.
type tableOutlet struct {
	t     *testing.T
	mu    sync.Mutex
	rows  map[string]string
	sends int
	// lateOK lets late messages be dropped; otherwise a drop fails the test.
	lateOK bool
}

func (o *tableOutlet) Send(_ context.Context, m *pipeline.Message) error {
	var r struct {
		Key   string          `json:"key"`
		Start string          `json:"window_start"`
		Final *bool           `json:"final"`
		Rest  json.RawMessage `json:"-"`
	}
	if err := json.Unmarshal(m.Body, &r); err != nil {
		o.t.Error(err)
	}
	if r.Final != nil {
		o.t.Errorf("a partial result reached the table: %s", m.Body)
	}
	o.mu.Lock()
	o.rows[r.Key+"@"+r.Start] = string(m.Body)
	o.sends++
	o.mu.Unlock()
	m.Ack()
	return nil
}
func (o *tableOutlet) SendTo(ctx context.Context, _ string, m *pipeline.Message) error {
	return o.Send(ctx, m)
}
func (o *tableOutlet) Fail(_ context.Context, m *pipeline.Message, err error) {
	o.t.Errorf("dead letter %s: %v", m.Body, err)
	m.Nack(err)
}
func (o *tableOutlet) Drop(m *pipeline.Message, reason string) {
	if o.lateOK && reason == ReasonLate {
		m.Ack()
		return
	}
	o.t.Errorf("dropped %s: %s", m.Body, reason)
	m.Ack()
}

var _ pipeline.Outlet = (*tableOutlet)(nil)

// durableRun is one `pipe run` of a durable window stage driven by the
// test: each message is handled before the next is sent, and a checkpoint
// runs when the test advances the clock.
type durableRun struct {
	t         *testing.T
	w         *windowStage
	clock     *pipelinetest.FakeClock
	in        chan *pipeline.Message
	handled   chan struct{}
	committed chan error
	cancel    context.CancelFunc
	done      chan error
}

func startDurable(t *testing.T, b state.Backend, out pipeline.Outlet) *durableRun {
	return startDurableWith(t, b, out, func(*windowConfig) {})
}

// startDurableWith starts a durable run whose config set changes.
func startDurableWith(t *testing.T, b state.Backend, out pipeline.Outlet, set func(c *windowConfig)) *durableRun {
	t.Helper()
	cfg := windowConfig{Type: "tumbling", Size: time.Second, OnLate: "drop", MaxOpen: 1000, MaxCollect: 10,
		Key: cel(t, "msg.k"), EventTime: cel(t, "msg.ts"), Emit: windowEmit{Mode: "on_close"},
		Aggregate: map[string]string{"n": "count()", "s": "sum(msg.v)"}}
	set(&cfg)
	clock := pipelinetest.NewFakeClock(time.Unix(0, 0))
	st, err := newWindow(&cfg, component.Env{Pipeline: "p", Node: "win", Clock: clock, State: b})
	if err != nil {
		t.Fatal(err)
	}
	r := &durableRun{t: t, w: st.(*windowStage), clock: clock, in: make(chan *pipeline.Message),
		handled: make(chan struct{}, 1), committed: make(chan error, 1), done: make(chan error, 1)}
	r.w.added = func() { r.handled <- struct{}{} }
	r.w.committed = func(err error) { r.committed <- err }
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- r.w.Run(ctx, r.in, out) }()
	return r
}

func (r *durableRun) send(m *pipeline.Message) {
	r.in <- m
	<-r.handled
}

func (r *durableRun) checkpoint() {
	r.t.Helper()
	r.clock.Advance(time.Second)
	if err := <-r.committed; err != nil {
		r.t.Fatalf("checkpoint: %v", err)
	}
}

// broker is a Kafka partition: offsets 0..n-1, each acked at most once.
type broker struct {
	mu    sync.Mutex
	acked map[int]bool
}

func (b *broker) msg(i int) *pipeline.Message {
	body := fmt.Sprintf(`{"k":"k%d","ts":%d,"v":%d}`, i%3, i*100, i)
	m := pipeline.NewMessage([]byte(body), func(err error) {
		if err == nil {
			b.mu.Lock()
			b.acked[i] = true
			b.mu.Unlock()
		}
	})
	m.Meta = map[string]string{"kafka_topic": "t", "kafka_partition": "0", "kafka_offset": strconv.Itoa(i)}
	return m
}

// expectedTable computes the windows of offsets 0..n-1 directly.
func expectedTable(n int) map[string]string {
	type agg struct{ n, s int }
	rows := map[string]*agg{}
	for i := range n {
		start := time.UnixMilli(int64(i*100) / 1000 * 1000).UTC()
		k := fmt.Sprintf(`k%d@%s`, i%3, start.Format(time.RFC3339Nano))
		if rows[k] == nil {
			rows[k] = &agg{}
		}
		rows[k].n++
		rows[k].s += i
	}
	out := map[string]string{}
	for k, a := range rows {
		key, start := k[:2], k[3:]
		end, _ := time.Parse(time.RFC3339Nano, start)
		out[k] = fmt.Sprintf(`{"key":%q,"window_start":%q,"window_end":%q,"n":%d,"s":%d}`,
			key, start, end.Add(time.Second).Format(time.RFC3339Nano), a.n, a.s)
	}
	return out
}

func TestGivenDurableWindowStateWhenTheProcessCrashesOnEachSideOfTheCommitThenTheTableEqualsTheExpectedOne(t *testing.T) {
	for name, backend := range durableBackends(t) {
		t.Run(name, func(t *testing.T) {
			b := backend(t)
			const n = 600
			out := &tableOutlet{t: t, rows: map[string]string{}}
			br := &broker{acked: map[int]bool{}}
			// Given three runs that crash (hard stop: nothing committed after
			// the last checkpoint, held messages nacked) at 150, 330 and 480,
			// each after a checkpoint taken part way, and each replaying the
			// partition from offset 0 (as if no ack reached the broker),
			for _, crash := range []struct{ ckpt, at int }{{100, 150}, {250, 330}, {400, 480}} {
				r := startDurable(t, b, out)
				for i := range crash.at {
					r.send(br.msg(i))
					if i+1 == crash.ckpt {
						r.checkpoint()
					}
				}
				r.cancel()
				if err := <-r.done; err == nil {
					t.Errorf("a hard stop holding messages returned nil")
				}
				for i := range crash.ckpt {
					if !br.acked[i] {
						t.Fatalf("offset %d, folded into a committed checkpoint, was not acked", i)
					}
				}
				if br.acked[crash.ckpt] {
					t.Fatalf("offset %d, after the last checkpoint, was acked", crash.ckpt)
				}
			}
			// When a last run replays everything and reaches the end of input,
			r := startDurable(t, b, out)
			for i := range n {
				r.send(br.msg(i))
			}
			close(r.in)
			if err := <-r.done; err != nil {
				t.Fatal(err)
			}
			// Then every offset was acked, the stage skipped what checkpoints
			// held, and the table equals the independently computed one.
			for i := range n {
				if !br.acked[i] {
					t.Fatalf("offset %d never acked", i)
				}
			}
			if got := r.w.replayedN.Load(); got != 400 {
				t.Errorf("last run skipped %d replayed messages, want 400 (the last checkpoint's)", got)
			}
			want := expectedTable(n)
			if len(out.rows) != len(want) {
				t.Errorf("table has %d rows, want %d", len(out.rows), len(want))
			}
			for k, w := range want {
				if out.rows[k] != w {
					t.Errorf("row %s = %s, want %s", k, out.rows[k], w)
				}
			}
			t.Logf("%d result writes for %d rows (re-emissions after crashes, absorbed by the upsert)", out.sends, len(want))
		})
	}
}

// nackOutlet refuses every result, as a sink would at the hard stop.
type nackOutlet struct{ tableOutlet }

func (o *nackOutlet) Send(_ context.Context, m *pipeline.Message) error {
	m.Nack(errors.New("sink refused"))
	return nil
}

func TestGivenDurableStateWhenAWindowResultIsNotDeliveredThenNothingIsCommittedAndTheHeldMessagesAreNacked(t *testing.T) {
	b := durableBackends(t)["redis"](t)
	out := &nackOutlet{tableOutlet{t: t, rows: map[string]string{}}}
	br := &broker{acked: map[int]bool{}}
	nacked := 0
	// Given a run whose sink refuses results, after 15 messages (the
	// first window, offsets 0..9 of three keys, closed and was refused),
	r := startDurable(t, b, out)
	for i := range 15 {
		m := br.msg(i)
		m2 := pipeline.NewMessage(m.Body, func(err error) {
			if err != nil {
				nacked++
			}
		})
		m2.Meta = m.Meta
		r.send(m2)
	}
	// when the checkpoint is due,
	r.clock.Advance(time.Second)
	// then it refuses to commit, the run ends with the sink's error, and
	// all 15 messages are nacked for redelivery.
	if err := <-r.committed; err == nil || !strings.Contains(err.Error(), "sink refused") {
		t.Fatalf("checkpoint after a refused result = %v, want the refusal", err)
	}
	if err := <-r.done; err == nil {
		t.Error("Run returned nil")
	}
	if nacked != 15 || len(br.acked) != 0 {
		t.Errorf("nacked %d, acked %d; want 15 nacked, none acked", nacked, len(br.acked))
	}
	if r.w.ckpts.Load() != 0 {
		t.Errorf("committed %d checkpoints, want 0", r.w.ckpts.Load())
	}
}

func TestGivenDurableStateWhenNothingChangedSinceTheLastCheckpointThenNoneIsWritten(t *testing.T) {
	b := durableBackends(t)["redis"](t)
	out := &tableOutlet{t: t, rows: map[string]string{}}
	br := &broker{acked: map[int]bool{}}
	r := startDurable(t, b, out)
	r.send(br.msg(0))
	r.checkpoint()
	r.checkpoint() // idle: no message, no window closed
	if got := r.w.ckpts.Load(); got != 1 {
		t.Errorf("checkpoints = %d after one busy and one idle interval, want 1", got)
	}
	close(r.in)
	if err := <-r.done; err != nil {
		t.Fatal(err)
	}
}
