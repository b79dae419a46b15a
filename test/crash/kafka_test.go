package crash

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestGivenKafkaIntoADurableWindowWhenPipeIsKilledThreeTimesThenTheTableEqualsTheExpectedOne
// runs a kfake cluster in the test process and pipe as a child process
// pointing at it, on one partition (replica_test.go covers four). Each of
// the first three runs is killed once a checkpoint of its part was
// committed to Kafka; it has read at most its part (nothing more is
// produced yet). Each restart waits out the killed member's session
// timeout in the group (session_timeout: 2s).
func TestGivenKafkaIntoADurableWindowWhenPipeIsKilledThreeTimesThenTheTableEqualsTheExpectedOne(t *testing.T) {
	n := size()
	topic, cl, db, file := kafkaWindow(t, "crash", 1)
	produce := func(lo, hi int, extra ...string) {
		var rs []*kgo.Record
		for i := lo; i < hi; i++ {
			rs = append(rs, &kgo.Record{Value: fmt.Appendf(nil, `{"k":"k%d","ts":%d,"v":%d}`, i%keys, int64(i)*100, i)})
		}
		for _, e := range extra {
			rs = append(rs, &kgo.Record{Value: []byte(e)})
		}
		if err := cl.ProduceSync(t.Context(), rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	committed := func() int64 {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Group = "win"
		rt := kmsg.NewOffsetFetchRequestTopic()
		rt.Topic, rt.Partitions = topic, []int32{0}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(t.Context(), cl)
		if err != nil || len(resp.Topics) == 0 || len(resp.Topics[0].Partitions) == 0 {
			return -1
		}
		return resp.Topics[0].Partitions[0].Offset
	}
	for part := range 3 {
		lo, hi := part*n/4, (part+1)*n/4
		produce(lo, hi)
		cmd := run(t, file)
		poll(t, fmt.Sprintf("a commit past offset %d", lo), func() bool { return committed() > int64(lo) })
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		t.Logf("kill %d: %d of %d produced; committed offset %d", part+1, hi, n, committed())
	}
	produce(3*n/4, n, fmt.Sprintf(`{"k":"end","ts":%d,"v":0}`, int64(n)*100+5000))
	lastRun(t, file, db, n, "every offset committed", func() bool { return committed() == int64(n+1) })
}

// kafkaWindow starts a kfake cluster with a topic of the given partitions,
// a producing client, the output table, and the crash pipeline file: the
// topic into the keyed window (state in Redis) into the table, with a
// 2 s group session so a killed member's partitions move on quickly.
func kafkaWindow(t *testing.T, name string, partitions int32, opts ...kgo.Opt) (topic string, cl *kgo.Client, db *outTable, file string) {
	t.Helper()
	id := strconv.FormatInt(time.Now().UnixNano(), 36)
	prefix := redisPrefix(t, name+":"+id+":")
	topic = name + "_" + id
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic), kfake.GroupMinSessionTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err = kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic(topic)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	db = table(t, "crash_out_"+id)
	file = filepath.Join(t.TempDir(), "pipe.yaml")
	yaml := fmt.Sprintf(`name: %s_%s
state:
  redis: {url: "redis://127.0.0.1:6379/0", prefix: %q}
  checkpoint_interval: 200ms
source:
  kafka: {brokers: [%q], topics: [%s], group: win, start: earliest, commit_interval: 100ms, session_timeout: 2s, heartbeat_interval: 200ms}
`, name, id, prefix, c.ListenAddrs()[0], topic) + windowToTable(id)
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return topic, cl, db, file
}
