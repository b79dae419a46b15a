package crash

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pipe-dsl/pipe/internal/servicetest"
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
	id := strconv.FormatInt(time.Now().UnixNano(), 36)
	rdb := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"})
	t.Cleanup(func() { rdb.Close() })
	if err := rdb.Ping(t.Context()).Err(); err != nil {
		servicetest.Unavailable(t, "Redis on 127.0.0.1:6379", err)
	}
	prefix := "crash:" + id + ":"
	t.Cleanup(func() {
		if ks, _ := rdb.Keys(t.Context(), prefix+"*").Result(); len(ks) > 0 {
			rdb.Del(t.Context(), ks...)
		}
	})
	topic := "crash_" + id
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic), kfake.GroupMinSessionTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	db := table(t, "crash_out_"+id)
	file := filepath.Join(t.TempDir(), "pipe.yaml")
	yaml := fmt.Sprintf(`name: crash_%s
state:
  redis: {url: "redis://127.0.0.1:6379/0", prefix: %q}
  checkpoint_interval: 200ms
source:
  kafka: {brokers: [%q], topics: [%s], group: win, start: earliest, commit_interval: 100ms, session_timeout: 2s, heartbeat_interval: 200ms}
`, id, prefix, c.ListenAddrs()[0], topic) + windowToTable(id)
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
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
