package redis_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/pipe-dsl/pipe/pipeline"
)

func TestEveryEntryAddedComesOutOfTheSinkStream(t *testing.T) {
	rdb := server(t)
	in, out := unique(t, rdb, "in"), unique(t, rdb, "out")
	const n = 3000
	want := bodies("id", n)
	add(t, rdb, in, want, "tenant", "acme")
	p := compile(t, fmt.Sprintf(`
name: roundtrip
source:
  redis_streams: {stream: %q, group: g, create_group: true, fetch_size: 100}
sink:
  redis_streams: {stream: %q, max_len: 100000}
`, in, out), nil)
	stop := start(t, p)
	settled(t, rdb, in, "g")
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	entries, err := rdb.XRange(t.Context(), out, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Values["body"].(string))
		if e.Values["tenant"] != "acme" || e.Values["redis_id"] != nil {
			t.Fatalf("entry fields = %v, want tenant and no redis_* fields", e.Values)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("output differs from input: %d vs %d entries", len(got), len(want))
	}
	// A consumer that stopped with nothing pending has left the group.
	consumers, err := rdb.XInfoConsumers(t.Context(), in, "g").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(consumers) != 0 {
		t.Errorf("consumers after a clean stop = %+v, want none", consumers)
	}
}

func TestFieldsBecomeMeta(t *testing.T) {
	rdb := server(t)
	in := unique(t, rdb, "in")
	id, err := rdb.XAdd(t.Context(), &goredis.XAddArgs{Stream: in, Values: []string{"payload", `{"x":1}`, "traceparent", "00-ab-cd-01"}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	p := compile(t, fmt.Sprintf(`
name: meta
source:
  redis_streams: {stream: %q, group: g, consumer: c1, create_group: true, field: payload}
sink:
  drop: {}
`, in), map[string]pipeline.Sink{"sink": rec})
	stop := start(t, p)
	m := collect(t, rec.C, 1, 10*time.Second)[0]
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if string(m.Body) != `{"x":1}` {
		t.Errorf("Body = %s, want the payload field", m.Body)
	}
	for k, want := range map[string]string{"traceparent": "00-ab-cd-01", "redis_stream": in, "redis_id": id} {
		if m.Meta[k] != want {
			t.Errorf("Meta[%q] = %q, want %q", k, m.Meta[k], want)
		}
	}
	if _, ok := m.Meta["payload"]; ok {
		t.Error("the body field is also in Meta")
	}
}

func TestANackedEntryIsClaimedAfterMinIdleThenDelivered(t *testing.T) {
	rdb := server(t)
	in := unique(t, rdb, "in")
	want := bodies("id", 20)
	add(t, rdb, in, want)
	rec := newRecorder()
	failed := false
	rec.Fail = func(m *pipeline.Message) error {
		if string(m.Body) == want[7] && !failed {
			failed = true
			return errors.New("sink down")
		}
		return nil
	}
	p := compile(t, fmt.Sprintf(`
name: redeliver
source:
  redis_streams: {stream: %q, group: g, create_group: true, min_idle: 50ms, claim_interval: 20ms, block: 50ms}
sink:
  drop: {}
`, in), map[string]pipeline.Sink{"sink": rec})
	stop := start(t, p)
	got := collect(t, rec.C, len(want), 10*time.Second)
	settled(t, rdb, in, "g")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	var seen []string
	var again *pipeline.Message
	for _, m := range got {
		seen = append(seen, string(m.Body))
		if string(m.Body) == want[7] {
			again = m
		}
	}
	slices.Sort(seen)
	slices.Sort(want)
	if !slices.Equal(seen, want) {
		t.Fatalf("delivered %v, want %v", seen, want)
	}
	if again.Meta["redis_delivered"] != "2" {
		t.Errorf("claimed entry has redis_delivered %q, want 2", again.Meta["redis_delivered"])
	}
}

func TestEntriesOfADeadConsumerAreClaimed(t *testing.T) {
	rdb := server(t)
	in := unique(t, rdb, "in")
	want := bodies("id", 50)
	add(t, rdb, in, want)
	if err := rdb.XGroupCreate(t.Context(), in, "g", "0").Err(); err != nil {
		t.Fatal(err)
	}
	// Given a consumer that read 30 entries and died without acking them.
	if err := rdb.XReadGroup(t.Context(), &goredis.XReadGroupArgs{Group: "g", Consumer: "dead", Streams: []string{in, ">"}, Count: 30}).Err(); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	p := compile(t, fmt.Sprintf(`
name: claim
source:
  redis_streams: {stream: %q, group: g, consumer: alive, min_idle: 50ms, claim_interval: 20ms, block: 50ms}
sink:
  drop: {}
`, in), map[string]pipeline.Sink{"sink": rec})
	stop := start(t, p)
	var got []string
	for _, m := range collect(t, rec.C, len(want), 10*time.Second) {
		got = append(got, string(m.Body))
	}
	settled(t, rdb, in, "g")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("delivered %d entries, want the %d of both consumers", len(got), len(want))
	}
}

func TestAnEntryWithoutTheBodyFieldIsDeadLetteredAndAcked(t *testing.T) {
	rdb := server(t)
	in := unique(t, rdb, "in")
	add(t, rdb, in, []string{"ok1"})
	if err := rdb.XAdd(t.Context(), &goredis.XAddArgs{Stream: in, Values: []string{"other", "x"}}).Err(); err != nil {
		t.Fatal(err)
	}
	add(t, rdb, in, []string{"ok2"})
	rec, dlq := newRecorder(), newRecorder()
	p := compile(t, fmt.Sprintf(`
name: poison
source:
  redis_streams: {stream: %q, group: g, create_group: true}
sink:
  drop: {}
dead_letter:
  drop: {}
`, in), map[string]pipeline.Sink{"sink": rec, "dead_letter": dlq})
	stop := start(t, p)
	collect(t, rec.C, 2, 10*time.Second)
	dl := envelope(t, collect(t, dlq.C, 1, 10*time.Second)[0])
	if dl.Reason != pipeline.ReasonInvalidPayload || dl.Meta["other"] != "x" {
		t.Errorf("dead letter = %+v, want reason invalid_payload with the entry's fields", dl)
	}
	settled(t, rdb, in, "g")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestARejectedEntryIsDeadLetteredAndAcked(t *testing.T) {
	rdb := server(t)
	in := unique(t, rdb, "in")
	add(t, rdb, in, []string{"a", "poison", "b"})
	rec, dlq := newRecorder(), newRecorder()
	rec.Fail = func(m *pipeline.Message) error {
		if string(m.Body) == "poison" {
			return errors.New("rejected")
		}
		return nil
	}
	p := compile(t, fmt.Sprintf(`
name: poison
source:
  redis_streams: {stream: %q, group: g, create_group: true, min_idle: 50ms, claim_interval: 20ms, block: 50ms}
sink:
  drop: {}
dead_letter:
  drop: {}
`, in), map[string]pipeline.Sink{"sink": rec, "dead_letter": dlq})
	stop := start(t, p)
	collect(t, rec.C, 2, 10*time.Second)
	dl := envelope(t, collect(t, dlq.C, 1, 10*time.Second)[0])
	if dl.Reason != pipeline.ReasonSinkError || dl.PayloadText != "poison" {
		t.Errorf("dead letter = %+v, want the poison entry with reason sink_error", dl)
	}
	settled(t, rdb, in, "g")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if len(dlq.C) != 0 {
		t.Errorf("%d more dead letters: the entry was redelivered", len(dlq.C))
	}
}

func TestAnEntryClaimedMoreThanMaxDeliverTimesIsDeadLettered(t *testing.T) {
	rdb := server(t)
	in := unique(t, rdb, "in")
	add(t, rdb, in, []string{"crash"})
	rec, dlq := newRecorder(), newRecorder()
	rec.Fail = func(*pipeline.Message) error { return errors.New("sink down") }
	dlq.Fail = func(m *pipeline.Message) error {
		if envelope(t, m).Reason == pipeline.ReasonSinkError {
			return errors.New("dead-letter sink down")
		}
		return nil
	}
	p := compile(t, fmt.Sprintf(`
name: maxdeliver
source:
  redis_streams: {stream: %q, group: g, create_group: true, min_idle: 20ms, claim_interval: 10ms, block: 20ms, max_deliver: 2}
sink:
  drop: {}
dead_letter:
  drop: {}
`, in), map[string]pipeline.Sink{"sink": rec, "dead_letter": dlq})
	stop := start(t, p)
	dl := envelope(t, collect(t, dlq.C, 1, 10*time.Second)[0])
	if dl.Reason != pipeline.ReasonRetries || dl.Stage != "source" || dl.Meta["redis_delivered"] != "3" {
		t.Errorf("dead letter = %+v, want reason retries_exhausted from the source on the third delivery", dl)
	}
	settled(t, rdb, in, "g")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestKilledConnectionsLoseNothing(t *testing.T) {
	rdb := server(t)
	in := unique(t, rdb, "in")
	const n = 20000
	want := bodies("id", n)
	add(t, rdb, in, want)
	consumer := strings.ReplaceAll(in, ":", "_")
	rec := newRecorder()
	p := compile(t, fmt.Sprintf(`
name: kill
source:
  redis_streams: {stream: %q, group: g, consumer: %q, create_group: true, fetch_size: 50, min_idle: 200ms, claim_interval: 100ms, block: 100ms}
sink:
  drop: {}
`, in, consumer), map[string]pipeline.Sink{"sink": rec})
	stop := start(t, p)
	got := map[string]int{}
	for _, m := range collect(t, rec.C, n/4, 10*time.Second) {
		got[string(m.Body)]++
	}
	// When every connection of the source is killed mid-stream, twice,
	killed := 0
	for range 2 {
		killed += kill(t, rdb, consumer)
		for _, m := range collect(t, rec.C, n/4, 10*time.Second) {
			got[string(m.Body)]++
		}
	}
	if killed == 0 {
		t.Fatal("no connection of the source found to kill")
	}
	// then every entry is still delivered, and acked.
	deadline := time.After(20 * time.Second)
	for len(got) < n {
		select {
		case m := <-rec.C:
			got[string(m.Body)]++
		case <-deadline:
			t.Fatalf("delivered %d of %d entries after killing %d connections", len(got), n, killed)
		}
	}
	settled(t, rdb, in, "g")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	dups := len(rec.C)
	for _, c := range got {
		dups += c - 1
	}
	t.Logf("killed %d connections; %d entries delivered, %d duplicates", killed, n, dups)
}

// kill kills the connections named name and returns how many.
func kill(t *testing.T, rdb *goredis.Client, name string) int {
	t.Helper()
	list, err := rdb.ClientList(t.Context()).Result()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(list, "\n") {
		if !strings.Contains(line, " name="+name+" ") {
			continue
		}
		for _, f := range strings.Fields(line) {
			if id, ok := strings.CutPrefix(f, "id="); ok {
				if err := rdb.Do(t.Context(), "CLIENT", "KILL", "ID", id).Err(); err == nil {
					n++
				}
			}
		}
	}
	return n
}

func TestEntriesAbandonedAtTheDrainDeadlineGoToTheOtherConsumersAtOnce(t *testing.T) {
	rdb := server(t)
	in := unique(t, rdb, "in")
	want := bodies("id", 500)
	add(t, rdb, in, want)
	yaml := func(consumer string) string {
		return fmt.Sprintf(`
name: stop
drain_timeout: 100ms
source:
  redis_streams: {stream: %q, group: g, consumer: %s, create_group: true, min_idle: 1h, claim_interval: 20ms, block: 50ms}
sink:
  drop: {}
`, in, consumer)
	}
	// Given a consumer whose sink hangs, so that the stop hits the drain deadline,
	first := newRecorder()
	first.Hold, first.Entered = make(chan struct{}), make(chan struct{}, 1)
	stop := start(t, compile(t, yaml("first"), map[string]pipeline.Sink{"sink": first}))
	<-first.Entered
	var ab *pipeline.AbandonedError
	if err := stop(); !errors.As(err, &ab) {
		t.Fatalf("Run = %v, want an AbandonedError", err)
	}
	// another consumer claims its entries at once, not after the 1h min_idle.
	second := newRecorder()
	stop = start(t, compile(t, yaml("second"), map[string]pipeline.Sink{"sink": second}))
	var got []string
	for _, m := range collect(t, second.C, len(want), 10*time.Second) {
		got = append(got, string(m.Body))
	}
	settled(t, rdb, in, "g")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("the second consumer delivered %d messages, want each of the %d once", len(got), len(want))
	}
}
