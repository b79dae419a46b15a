package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/connectors/internal/conntest"
	"github.com/pipe-dsl/pipe/expr"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"
)

// These tests run against franz-go's in-process kfake cluster: there is no
// Kafka broker on the test machines.

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func cluster(t *testing.T, partitions int32, topics ...string) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// produce writes n records with values 0..n-1 to partition 0 of topic.
func produce(t *testing.T, brokers []string, topic string, n int) {
	t.Helper()
	produceTo(t, brokers, topic, 0, "", n)
}

// produceTo writes n records with values prefix0..prefix(n-1) to one partition.
func produceTo(t *testing.T, brokers []string, topic string, partition int32, prefix string, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var rs []*kgo.Record
	for i := range n {
		rs = append(rs, &kgo.Record{Topic: topic, Partition: partition, Value: []byte(prefix + strconv.Itoa(i)),
			Headers: []kgo.RecordHeader{{Key: "traceparent", Value: []byte("tp-" + strconv.Itoa(i))}}})
	}
	if err := cl.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// recorder is a sink recording (partition, offset) of each message.
type recorder struct {
	mu   sync.Mutex
	got  []*pipeline.Message
	sig  chan struct{}
	fail func(ctx context.Context, m *pipeline.Message) error
}

func newRecorder() *recorder { return &recorder{sig: make(chan struct{}, 1<<16)} }

func (r *recorder) Write(ctx context.Context, m *pipeline.Message) error {
	if r.fail != nil {
		if err := r.fail(ctx, m); err != nil {
			return err
		}
	}
	r.mu.Lock()
	r.got = append(r.got, m)
	r.mu.Unlock()
	r.sig <- struct{}{}
	return nil
}

func (r *recorder) values() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, m := range r.got {
		out = append(out, string(m.Body))
	}
	return out
}

func (r *recorder) waitFor(t *testing.T, done func([]string) bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for !done(r.values()) {
		select {
		case <-r.sig:
		case <-deadline:
			t.Fatalf("recorded %v; condition not met", r.values())
		}
	}
}

func count(n int) func([]string) bool { return func(v []string) bool { return len(v) >= n } }

func strs(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, strconv.Itoa(i))
	}
	return out
}

// consume runs a kafka source into rec until until holds; kill makes the
// stop a hard one, nacking what is in flight.
func consume(t *testing.T, brokers []string, topic, group string, rec *recorder, workers int, until func([]string) bool, kill bool) {
	t.Helper()
	stop := start(t, brokers, topic, group, rec, workers, 20*time.Millisecond)
	rec.waitFor(t, until)
	if err := stop(kill); !kill && err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// start runs a kafka source into rec until the returned stop is called.
func start(t *testing.T, brokers []string, topic, group string, rec *recorder, workers int, commitEvery time.Duration) (stop func(kill bool) error) {
	t.Helper()
	src, err := newSource(&sourceConfig{Brokers: brokers, Topics: []string{topic}, Group: group, Start: "earliest", CommitInterval: commitEvery},
		component.Env{Pipeline: "ktest", Node: "src"})
	if err != nil {
		t.Fatal(err)
	}
	p := pipeline.New("ktest")
	p.DrainTimeout = 10 * time.Second
	if err := errors.Join(p.AddSource("src", "kafka", src), p.AddSink("rec", "recorder", rec, pipeline.NodeOptions{Workers: workers}), p.Connect("src", "", "rec")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	return func(kill bool) error {
		if kill {
			p.Kill()
		}
		cancel()
		return <-done
	}
}

func TestSourceDeliversInPartitionOrderWithHeadersAsMeta(t *testing.T) {
	brokers := cluster(t, 1, "in")
	produce(t, brokers, "in", 50)
	rec := newRecorder()
	consume(t, brokers, "in", "g1", rec, 1, count(50), false)
	if got := rec.values(); !slices.Equal(got, strs(0, 49)) {
		t.Fatalf("values = %v, want 0..49", got)
	}
	m := rec.got[7]
	if m.Meta["traceparent"] != "tp-7" || m.Meta["kafka_offset"] != "7" || m.Meta["kafka_topic"] != "in" || m.Meta["kafka_partition"] != "0" {
		t.Fatalf("meta of record 7 = %v", m.Meta)
	}
	// Everything was acked and committed: the group resumes at the end.
	produce(t, brokers, "in", 3)
	again := newRecorder()
	consume(t, brokers, "in", "g1", again, 1, count(3), false)
	if got := again.values(); !slices.Equal(got, strs(0, 2)) {
		t.Fatalf("after restart values = %v, want the 3 new records 0..2", got)
	}
}

// Record 2 is held by the sink while 3..9 are acked; a crash then commits
// nothing past 2, so the restarted group member reads 2..9 again.
func TestSourceCommitsOnlyUpToTheFirstUnackedRecord(t *testing.T) {
	brokers := cluster(t, 1, "in")
	produce(t, brokers, "in", 10)
	rec := newRecorder()
	rec.fail = func(ctx context.Context, m *pipeline.Message) error {
		if string(m.Body) == "2" {
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}
	consume(t, brokers, "in", "g2", rec, 4, count(9), true)
	if got := rec.values(); slices.Contains(got, "2") || len(got) != 9 {
		t.Fatalf("first run delivered %v, want every record but 2", got)
	}
	again := newRecorder()
	consume(t, brokers, "in", "g2", again, 1, count(8), false)
	if got := again.values(); !slices.Equal(got, strs(2, 9)) {
		t.Fatalf("after the crash the group read %v, want 2..9", got)
	}
}

func TestSourceRereadsFromANackedRecord(t *testing.T) {
	brokers := cluster(t, 1, "in")
	produce(t, brokers, "in", 10)
	rec := newRecorder()
	var once sync.Once
	rec.fail = func(_ context.Context, m *pipeline.Message) error {
		var err error
		if string(m.Body) == "3" {
			once.Do(func() { err = errors.New("first delivery of 3 fails") })
		}
		return err
	}
	consume(t, brokers, "in", "g3", rec, 1, func(v []string) bool {
		return slices.Contains(v, "3") && v[len(v)-1] == "9"
	}, false)
	got := rec.values()
	i := slices.Index(got, "3")
	if !slices.Equal(got[:3], strs(0, 2)) || !slices.Equal(got[i:], strs(3, 9)) {
		t.Fatalf("values = %v, want 0..2, maybe some of 4.., then 3..9", got)
	}
	// The reread is a new read epoch (a stateful stage reloads its state
	// from its checkpoint when it sees one), the same for all of it.
	first, reread := rec.got[0].Meta["kafka_read_epoch"], rec.got[i].Meta["kafka_read_epoch"]
	if first == "" || reread == first {
		t.Errorf("kafka_read_epoch = %q before the rewind and %q after, want two different epochs", first, reread)
	}
	for _, m := range rec.got[i:] {
		if e := m.Meta["kafka_read_epoch"]; e != reread {
			t.Errorf("record %s of the reread has kafka_read_epoch %q, want %q", m.Body, e, reread)
		}
	}
	again := newRecorder()
	produce(t, brokers, "in", 1)
	consume(t, brokers, "in", "g3", again, 1, count(1), false)
	if got := again.values(); !slices.Equal(got, []string{"0"}) {
		t.Fatalf("after restart values = %v, want only the new record", got)
	}
}

func TestSinkRoundTripWithKeysAndHeaders(t *testing.T) {
	brokers := cluster(t, 3, "out")
	key, err := expr.Compile("string(msg.id % 5)")
	if err != nil {
		t.Fatal(err)
	}
	sk, err := newSink(&sinkConfig{Brokers: brokers, Topic: "out", Key: key, Timeout: 10 * time.Second}, component.Env{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 100
	var batch []*pipeline.Message
	for i := range n {
		m := pipeline.NewMessage(fmt.Appendf(nil, `{"id": %d}`, i), nil)
		m.Meta = map[string]string{"traceparent": fmt.Sprintf("tp-%d", i), "kafka_offset": "99"}
		batch = append(batch, m)
	}
	conntest.Traced(t, batch[7]) // its span's context replaces the incoming one
	ctx := context.Background()
	if err := sk.Write(ctx, pipeline.NewBatch(batch[:50])); err != nil {
		t.Fatalf("Write(batch): %v", err)
	}
	for _, m := range batch[50:] {
		if err := sk.Write(ctx, m); err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
	if err := sk.(*sink).Close(ctx); err != nil {
		t.Fatal(err)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("out"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	partOfKey := map[string]int32{}
	lastID := map[string]int{}
	got := 0
	for got < n {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if err := fs.Err(); err != nil {
			t.Fatalf("poll: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			got++
			k := string(r.Key)
			if p, ok := partOfKey[k]; ok && p != r.Partition {
				t.Errorf("key %s in partitions %d and %d", k, p, r.Partition)
			}
			partOfKey[k] = r.Partition
			var id int
			fmt.Sscanf(string(r.Value), `{"id": %d}`, &id)
			if prev, ok := lastID[k]; ok && id <= prev {
				t.Errorf("key %s: id %d after %d", k, id, prev)
			}
			lastID[k] = id
			if strconv.Itoa(id%5) != k {
				t.Errorf("record %s has key %q", r.Value, k)
			}
			tp := fmt.Sprintf("tp-%d", id)
			if id == 7 {
				tp = conntest.TracedTraceparent
			}
			if len(r.Headers) != 1 || r.Headers[0].Key != "traceparent" || string(r.Headers[0].Value) != tp {
				t.Errorf("record %s headers = %v, want only the traceparent %s", r.Value, r.Headers, tp)
			}
		})
	}
	if got != n || len(partOfKey) != 5 {
		t.Fatalf("consumed %d records with %d keys, want %d and 5", got, len(partOfKey), n)
	}
}

func TestSinkKeyErrorIsAnExpressionError(t *testing.T) {
	key, err := expr.Compile("msg.missing")
	if err != nil {
		t.Fatal(err)
	}
	sk, err := newSink(&sinkConfig{Brokers: []string{"127.0.0.1:1"}, Topic: "out", Key: key}, component.Env{})
	if err != nil {
		t.Fatal(err)
	}
	err = sk.Write(context.Background(), pipeline.NewMessage([]byte(`{"id": 1}`), nil))
	if pipeline.Reason(err) != pipeline.ReasonExpression {
		t.Fatalf("Write = %v, want reason %s", err, pipeline.ReasonExpression)
	}
}

// With three partitions, a record held in partition 1 holds back only that
// partition's commit: after a crash, partitions 0 and 2 resume after their
// last record and partition 1 at the held one.
func TestSourceCommitsEachPartitionSeparately(t *testing.T) {
	brokers := cluster(t, 3, "in")
	for p := range int32(3) {
		produceTo(t, brokers, "in", p, fmt.Sprintf("p%d-", p), 5)
	}
	rec := newRecorder()
	rec.fail = func(ctx context.Context, m *pipeline.Message) error {
		if string(m.Body) == "p1-2" {
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}
	consume(t, brokers, "in", "g4", rec, 4, count(14), true)
	if got := rec.values(); slices.Contains(got, "p1-2") {
		t.Fatalf("first run delivered the held record: %v", got)
	}
	for p := range int32(3) {
		produceTo(t, brokers, "in", p, fmt.Sprintf("p%d-", p), 1) // one more each: pN-0 again, as a new record
	}
	again := newRecorder()
	consume(t, brokers, "in", "g4", again, 1, count(6), false)
	got := again.values()
	slices.Sort(got)
	want := []string{"p0-0", "p1-0", "p1-2", "p1-3", "p1-4", "p2-0"}
	if !slices.Equal(got, want) {
		t.Fatalf("after the crash the group read %v, want %v", got, want)
	}
	var p1 []string
	for _, m := range again.got {
		if m.Meta["kafka_partition"] == "1" {
			p1 = append(p1, string(m.Body))
		}
	}
	if want := []string{"p1-2", "p1-3", "p1-4", "p1-0"}; !slices.Equal(p1, want) {
		t.Fatalf("partition 1 after the crash = %v, want %v in offset order", p1, want)
	}
}

// Member A never commits on its timer; when member B joins, A commits what
// it acked for the partitions it gives up, so B starts after them.
func TestSourceCommitsRevokedPartitionsOnRebalance(t *testing.T) {
	brokers := cluster(t, 4, "in")
	for p := range int32(4) {
		produceTo(t, brokers, "in", p, fmt.Sprintf("old-p%d-", p), 3)
	}
	a := newRecorder()
	stopA := start(t, brokers, "in", "g5", a, 1, time.Hour)
	a.waitFor(t, count(12))
	b := newRecorder()
	stopB := start(t, brokers, "in", "g5", b, 1, time.Hour)
	deadline := time.After(30 * time.Second)
	for i := 0; len(b.values()) == 0; i++ {
		for p := range int32(4) {
			produceTo(t, brokers, "in", p, fmt.Sprintf("new%d-p%d-", i, p), 1)
		}
		select {
		case <-b.sig:
		case <-time.After(500 * time.Millisecond):
		case <-deadline:
			t.Fatal("member B was never assigned a partition")
		}
	}
	if err := errors.Join(stopB(false), stopA(false)); err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, v := range b.values() {
		if strings.HasPrefix(v, "old-") {
			t.Fatalf("member B read %q, acked and committed by A on revoke; B read %v", v, b.values())
		}
	}
}

func TestSinkFailsWhenNoBrokerAcksInTime(t *testing.T) {
	sk, err := newSink(&sinkConfig{Brokers: []string{"127.0.0.1:1"}, Topic: "out", Timeout: 200 * time.Millisecond}, component.Env{})
	if err != nil {
		t.Fatal(err)
	}
	defer sk.(*sink).Close(context.Background())
	err = sk.Write(context.Background(), pipeline.NewMessage([]byte(`{}`), nil))
	if err == nil {
		t.Fatal("Write with no broker succeeded")
	}
}

// In a batch, a member whose key fails and a record the client refuses
// for its size are refused alone; the rest is produced.
func TestSinkRefusesOnlyTheBadMembersOfABatch(t *testing.T) {
	brokers := cluster(t, 1, "out")
	key, err := expr.Compile("string(msg.id)")
	if err != nil {
		t.Fatal(err)
	}
	sk, err := newSink(&sinkConfig{Brokers: brokers, Topic: "out", Key: key, Timeout: 10 * time.Second}, component.Env{})
	if err != nil {
		t.Fatal(err)
	}
	defer sk.(*sink).Close(context.Background())
	huge := fmt.Appendf(nil, `{"id": 3, "pad": "%s"}`, strings.Repeat("x", 2<<20)) // over the 1 MB batch limit
	bodies := [][]byte{[]byte(`{"id": 1}`), []byte(`{"no_id": 2}`), huge, []byte(`{"id": 4}`)}
	var members []*pipeline.Message
	for _, b := range bodies {
		members = append(members, pipeline.NewMessage(b, nil))
	}
	err = sk.Write(context.Background(), pipeline.NewBatch(members))
	var be *pipeline.BatchError
	if !errors.As(err, &be) || len(be.Errs) != 4 || be.Errs[0] != nil || be.Errs[3] != nil {
		if be != nil {
			t.Logf("errs: %q", be.Errs)
		}
		t.Fatalf("Write = %v, want a BatchError refusing members 1 and 2 only", err)
	}
	if pipeline.Reason(be.Errs[1]) != pipeline.ReasonExpression {
		t.Errorf("member 1: %v, want an expression error", be.Errs[1])
	}
	if !errors.Is(be.Errs[2], kerr.MessageTooLarge) {
		t.Errorf("member 2: %v, want MESSAGE_TOO_LARGE", be.Errs[2])
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("out"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var keys []string
	for len(keys) < 2 {
		pctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if err := fs.Err(); err != nil {
			t.Fatalf("poll: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) { keys = append(keys, string(r.Key)) })
	}
	if !slices.Equal(keys, []string{"1", "4"}) {
		t.Errorf("topic holds keys %v, want [1 4]", keys)
	}
}
