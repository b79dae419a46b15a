package crash

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestGivenTwoReplicasOfADurableWindowOnAPartitionedStreamWhenOneIsKilledThenTheTableEqualsTheExpectedOne
// runs two `pipe run` processes of one keyed durable window on a
// JetStream stream of 4 partitions (key -> partition, as a subject
// mapping would), SIGKILLs one after the first half of the input was
// read, and checks that the survivor takes its partitions over and the
// final table equals the windows computed directly from the input:
// every window once, with exact values.
func TestGivenTwoReplicasOfADurableWindowOnAPartitionedStreamWhenOneIsKilledThenTheTableEqualsTheExpectedOne(t *testing.T) {
	const parts = 4
	n := size()
	id := strconv.FormatInt(time.Now().UnixNano(), 36)
	stream := "REPW_" + id
	js := jetStream(t, stream)
	db := table(t, "crash_out_"+id)
	prefix := redisPrefix(t, "repw:"+id+":")
	file := filepath.Join(t.TempDir(), "pipe.yaml")
	yaml := fmt.Sprintf(`name: repw_%s
state:
  redis: {url: "redis://127.0.0.1:6379/0", prefix: %q}
  checkpoint_interval: 200ms
source:
  nats_jetstream: {stream: %s, durable: win, create: true, rewind: true, ack_wait: 30s, max_ack_pending: 100000,
    partitions: %d, partition_subject: "%s.{partition}.*", lease_ttl: 2s}
`, id, prefix, stream, parts, stream) + windowToTable(id)
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	// Message i has key k(i%keys) (see expected); the key picks the
	// partition, as a subject mapping partition(4, key) would.
	subject := func(key int) string { return fmt.Sprintf("%s.%d.ev", stream, key%parts) }
	pub := func(lo, hi int) {
		t.Helper()
		for i := lo; i < hi; i++ {
			if _, err := js.js.PublishAsync(subject(i%keys), fmt.Appendf(nil, `{"k":"k%d","ts":%d,"v":%d}`, i%keys, int64(i)*100, i)); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case <-js.js.PublishAsyncComplete():
		case <-time.After(30 * time.Second):
			t.Fatal("publish acks missing")
		}
	}
	consumers := func(ok func(pending, unacked uint64) bool) bool {
		for p := range parts {
			c, err := js.js.Consumer(t.Context(), stream, fmt.Sprintf("win-%d", p))
			if err != nil {
				return false
			}
			info, err := c.Info(t.Context())
			if err != nil || !ok(info.NumPending, uint64(info.NumAckPending)) {
				return false
			}
		}
		return true
	}
	a, b := run(t, file), run(t, file)
	held := holdings(t, prefix, "nats:"+stream+"/win")
	poll(t, "both replicas to hold two partitions each", func() bool {
		h := held()
		return len(h) == 2 && h[0] == 2 && h[1] == 2
	})
	pub(0, n/2)
	// Every partition's first half is read (some of it committed, some
	// not: checkpoints run every 200ms); then a dies.
	poll(t, "the first half read", func() bool {
		return consumers(func(pending, _ uint64) bool { return pending == 0 })
	})
	if err := a.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = a.Wait()
	for p := range parts {
		c, err := js.js.Consumer(t.Context(), stream, fmt.Sprintf("win-%d", p))
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("kill: partition %d read through stream sequence %d, acked (committed) %d of %d", p, info.Delivered.Stream, info.AckFloor.Consumer, info.Delivered.Consumer)
	}
	pub(n/2, n)
	for p := range parts {
		if _, err := js.js.Publish(t.Context(), fmt.Sprintf("%s.%d.ev", stream, p), fmt.Appendf(nil, `{"k":"end","ts":%d,"v":0}`, int64(n)*100+5000)); err != nil {
			t.Fatal(err)
		}
	}
	want := expected(n)
	poll(t, "the table complete and every partition acked", func() bool {
		return db.count(t) == len(want) && consumers(func(pending, unacked uint64) bool { return pending == 0 && unacked == 0 })
	})
	stop(t, b, "b")
	db.check(t, want)
}
