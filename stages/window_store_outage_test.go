package stages

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/internal/servicetest"
	"github.com/pipe-dsl/pipe/internal/tcpproxy"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
	"github.com/pipe-dsl/pipe/state"
	"github.com/pipe-dsl/pipe/state/pgstate"
	"github.com/pipe-dsl/pipe/state/redisstate"
)

// Tests of a durable window whose state store goes away mid-run: the store
// is reached through a tcpproxy that cuts every connection and refuses new
// ones until restored. The stage's clock is fake, so the guard's backoff
// and the breaker's recovery run on it; the test advances it through each
// wait (driveUntil).

// proxiedBackends returns the real Redis and PostgreSQL backends, reached
// through a proxy, with names unique to the test.
func proxiedBackends() map[string]func(t *testing.T) (state.Backend, *tcpproxy.Proxy) {
	id := time.Now().UnixNano()
	return map[string]func(t *testing.T) (state.Backend, *tcpproxy.Proxy){
		"redis": func(t *testing.T) (state.Backend, *tcpproxy.Proxy) {
			prefix := redisTestPrefix(t, fmt.Sprintf("pipe-test-outage:%d:", id))
			p := tcpproxy.New(t, "127.0.0.1:6379")
			return &redisstate.Backend{URL: "redis://" + p.Addr() + "/0", Prefix: prefix, Interval: time.Second}, p
		},
		"postgres": func(t *testing.T) (state.Backend, *tcpproxy.Proxy) {
			const dsn = "postgres://postgres@%s/test?sslmode=disable"
			conn, err := pgx.Connect(t.Context(), fmt.Sprintf(dsn, "127.0.0.1:5432"))
			if err != nil {
				servicetest.Unavailable(t, "PostgreSQL on 127.0.0.1:5432", err)
			}
			table := fmt.Sprintf("pipe_state_outage_%d", id)
			t.Cleanup(func() {
				for _, s := range []string{"", "_meta", "_keys"} {
					conn.Exec(context.Background(), "DROP TABLE IF EXISTS "+table+s)
				}
				conn.Close(context.Background())
			})
			p := tcpproxy.New(t, "127.0.0.1:5432")
			return &pgstate.Backend{DSN: fmt.Sprintf(dsn, p.Addr()), Table: table, Interval: time.Second}, p
		},
	}
}

// countingBroker is a Kafka partition that counts every ack and nack of
// each offset.
type countingBroker struct {
	mu          sync.Mutex
	acks, nacks map[int]int
}

func newCountingBroker() *countingBroker {
	return &countingBroker{acks: map[int]int{}, nacks: map[int]int{}}
}

func (b *countingBroker) msg(i int) *pipeline.Message {
	body := fmt.Sprintf(`{"k":"k%d","ts":%d,"v":%d}`, i%3, i*100, i)
	m := pipeline.NewMessage([]byte(body), func(err error) {
		b.mu.Lock()
		defer b.mu.Unlock()
		if err == nil {
			b.acks[i]++
		} else {
			b.nacks[i]++
		}
	})
	m.Meta = map[string]string{"kafka_topic": "t", "kafka_partition": "0", "kafka_offset": strconv.Itoa(i)}
	return m
}

// nacked returns a copy of the nack counts.
func (b *countingBroker) nacked() map[int]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return maps.Clone(b.nacks)
}

// ackedOnce fails unless offsets [0, n) were each acked exactly once and no
// other offset was acked.
func (b *countingBroker) ackedOnce(t *testing.T, n int) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range n {
		if b.acks[i] != 1 {
			t.Fatalf("offset %d acked %d times, want once (offsets acked: %d)", i, b.acks[i], len(b.acks))
		}
	}
	if len(b.acks) != n {
		t.Fatalf("%d offsets acked, want exactly [0, %d)", len(b.acks), n)
	}
}

// outageRun is one run of a durable window stage (the shape of
// startDurable's) whose checkpoint hook never blocks the stage.
type outageRun struct {
	w         *windowStage
	clock     *pipelinetest.FakeClock
	in        chan *pipeline.Message
	handled   chan struct{}
	committed chan error
	taken     atomic.Int64 // messages the stage has handled
	cancel    context.CancelFunc
	done      chan error
}

func startOutageRun(t *testing.T, b state.Backend, out pipeline.Outlet) *outageRun {
	t.Helper()
	cfg := windowConfig{Type: "tumbling", Size: time.Second, OnLate: "drop", MaxOpen: 1000, MaxCollect: 10,
		Key: cel(t, "msg.k"), EventTime: cel(t, "msg.ts"), Emit: windowEmit{Mode: "on_close"},
		Aggregate: map[string]string{"n": "count()", "s": "sum(msg.v)"}}
	clock := pipelinetest.NewFakeClock(time.Unix(0, 0))
	st, err := newWindow(&cfg, component.Env{Pipeline: "p", Node: "win", Clock: clock, State: b})
	if err != nil {
		t.Fatal(err)
	}
	r := &outageRun{w: st.(*windowStage), clock: clock, in: make(chan *pipeline.Message),
		handled: make(chan struct{}, 1), committed: make(chan error, 1000), done: make(chan error, 1)}
	r.w.added = func() { r.taken.Add(1); r.handled <- struct{}{} }
	r.w.committed = func(err error) { r.committed <- err }
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- r.w.Run(ctx, r.in, out) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Error("the window stage did not stop")
		}
	})
	return r
}

// send hands m to the stage and waits until it is handled.
func (r *outageRun) send(m *pipeline.Message) {
	r.in <- m
	<-r.handled
}

// sendAll sends msgs from a goroutine; the returned channel closes when all
// were handled.
func (r *outageRun) sendAll(msgs []*pipeline.Message) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, m := range msgs {
			r.send(m)
		}
	}()
	return done
}

// fig returns the stage's figure named name, or -1.
func (r *outageRun) fig(name string) float64 { return figure(r.w.Report(), name, "") }

// driveUntil advances the stage's clock through every timer it waits on
// (the checkpoint timer, the guard's backoff, the breaker's recovery)
// until cond holds. Between two waits the stage is talking to the store
// over the network, which takes real time: the loop polls for the next
// armed timer meanwhile.
func driveUntil(t *testing.T, clock *pipelinetest.FakeClock, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		if d, ok := clock.Next(); ok {
			clock.Advance(max(d, 0))
		} else {
			time.Sleep(time.Millisecond)
		}
	}
}

// received reports whether ch has a value, storing it in got.
func received(ch <-chan error, got *error) func() bool {
	return func() bool {
		select {
		case *got = <-ch:
			return true
		default:
			return false
		}
	}
}

func msgs(b *countingBroker, lo, hi int) []*pipeline.Message {
	var out []*pipeline.Message
	for i := lo; i < hi; i++ {
		out = append(out, b.msg(i))
	}
	return out
}

func TestGivenADurableWindowWhenTheStoreConnectionIsCutForSeveralCheckpointsThenNothingIsAckedUntilItCommitsAndTheResultsAreExact(t *testing.T) {
	for name, backend := range proxiedBackends() {
		t.Run(name, func(t *testing.T) {
			b, proxy := backend(t)
			const n = 600
			out := &tableOutlet{t: t, rows: map[string]string{}}
			br := newCountingBroker()
			r := startOutageRun(t, b, out)
			// Given offsets 0..99 committed by a checkpoint and 100..199
			// folded since,
			for _, m := range msgs(br, 0, 100) {
				r.send(m)
			}
			var err error
			r.clock.Advance(time.Second)
			if err = <-r.committed; err != nil {
				t.Fatalf("first checkpoint: %v", err)
			}
			for _, m := range msgs(br, 100, 200) {
				r.send(m)
			}
			// when the store connection is cut as the next checkpoint falls
			// due, and stays cut for more than five checkpoint intervals,
			proxy.Cut(true)
			cutAt := r.clock.Now()
			r.clock.Advance(time.Second)
			driveUntil(t, r.clock, "the first failed store call", func() bool { return r.fig("store_failures") >= 1 })
			sent := r.sendAll(msgs(br, 200, 300)) // the source keeps offering
			driveUntil(t, r.clock, "the breaker to open and five intervals to pass", func() bool {
				return r.fig("store_breaker_opened") >= 1 && r.clock.Now().Sub(cutAt) >= 5*time.Second
			})
			// then the stage waits in its checkpoint: nothing after the
			// first checkpoint is acked or nacked, no further message is
			// taken in, and the figures show the outage,
			br.ackedOnce(t, 100)
			if nacks := br.nacked(); len(nacks) != 0 {
				t.Fatalf("nacked %v during the outage, want none (the stage waits)", nacks)
			}
			if got := r.taken.Load(); got != 200 {
				t.Fatalf("the stage took %d messages during the outage, want 200 (it waits for the store)", got)
			}
			if f := r.fig("store_failures"); f < 5 {
				t.Errorf("store_failures = %v during the outage, want >= 5 (the breaker opened)", f)
			}
			if ck, fail := r.fig("checkpoints"), r.fig("checkpoint_failures"); ck != 1 || fail != 0 {
				t.Errorf("checkpoints = %v, checkpoint_failures = %v during the outage; want 1 and 0 (the commit is still being retried)", ck, fail)
			}
			// and when the store is reachable again, that checkpoint
			// commits, acks 100..199 once, and the stage goes on.
			proxy.Restore()
			driveUntil(t, r.clock, "the checkpoint to commit", received(r.committed, &err))
			if err != nil {
				t.Fatalf("the checkpoint after the outage: %v", err)
			}
			br.ackedOnce(t, 200)
			if s := r.fig("store_breaker_state"); s != 0 {
				t.Errorf("store_breaker_state = %v after the store came back, want 0 (closed)", s)
			}
			<-sent
			for _, m := range msgs(br, 300, n) {
				r.send(m)
			}
			close(r.in)
			if err := <-r.done; err != nil {
				t.Fatal(err)
			}
			r.done <- nil // for the cleanup
			// Every offset was acked once, and the table equals the
			// uninterrupted run's, each window written once.
			br.ackedOnce(t, n)
			want := expectedTable(n)
			if len(out.rows) != len(want) || out.sends != len(want) {
				t.Errorf("table has %d rows from %d writes, want %d rows written once each", len(out.rows), out.sends, len(want))
			}
			for k, w := range want {
				if out.rows[k] != w {
					t.Errorf("row %s = %s, want %s", k, out.rows[k], w)
				}
			}
			t.Logf("outage: %.0f failed store calls, breaker opened %.0f times", r.fig("store_failures"), r.fig("store_breaker_opened"))
		})
	}
}

func TestGivenADurableWindowWhenItIsStoppedHardWhileTheStoreIsDownThenItNacksWhatItHeldAndTheNextRunWaitsForTheStore(t *testing.T) {
	for name, backend := range proxiedBackends() {
		t.Run(name, func(t *testing.T) {
			b, proxy := backend(t)
			const n = 600
			out := &tableOutlet{t: t, rows: map[string]string{}}
			br := newCountingBroker()
			// Given a run that committed 0..99 and folded 100..149, whose
			// next checkpoint finds the store unreachable,
			r := startOutageRun(t, b, out)
			for _, m := range msgs(br, 0, 100) {
				r.send(m)
			}
			r.clock.Advance(time.Second)
			if err := <-r.committed; err != nil {
				t.Fatalf("first checkpoint: %v", err)
			}
			for _, m := range msgs(br, 100, 150) {
				r.send(m)
			}
			proxy.Cut(true)
			r.clock.Advance(time.Second)
			driveUntil(t, r.clock, "the first failed store call", func() bool { return r.fig("store_failures") >= 1 })
			// when the pipeline is stopped hard (the drain timeout passed),
			r.cancel()
			if err := <-r.done; err == nil {
				t.Error("a hard stop holding messages returned nil")
			}
			r.done <- nil
			// then the 50 messages folded since the checkpoint are nacked,
			// none acked,
			br.ackedOnce(t, 100)
			nacks := br.nacked()
			for i := 100; i < 150; i++ {
				if nacks[i] != 1 {
					t.Fatalf("offset %d nacked %d times at the hard stop, want once", i, nacks[i])
				}
			}
			if len(nacks) != 50 {
				t.Fatalf("%d offsets nacked at the hard stop, want 50", len(nacks))
			}
			// and a next run, started while the store is still down, waits:
			// it takes no message until it has loaded the checkpoint.
			r2 := startOutageRun(t, b, out)
			sent := r2.sendAll(msgs(br, 100, n)) // the broker redelivers what was not acked
			driveUntil(t, r2.clock, "the next run's breaker to open", func() bool { return r2.fig("store_breaker_opened") >= 1 })
			if got := r2.taken.Load(); got != 0 {
				t.Fatalf("the next run took %d messages before loading its state, want 0", got)
			}
			proxy.Restore()
			driveUntil(t, r2.clock, "the next run to take the redelivered messages", func() bool {
				select {
				case <-sent:
					return true
				default:
					return false
				}
			})
			close(r2.in)
			if err := <-r2.done; err != nil {
				t.Fatal(err)
			}
			r2.done <- nil
			// Every offset was acked once in all, and the table equals the
			// expected one.
			br.ackedOnce(t, n)
			want := expectedTable(n)
			if len(out.rows) != len(want) {
				t.Errorf("table has %d rows, want %d", len(out.rows), len(want))
			}
			for k, w := range want {
				if out.rows[k] != w {
					t.Errorf("row %s = %s, want %s", k, out.rows[k], w)
				}
			}
		})
	}
}
