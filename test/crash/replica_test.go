package crash

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// partitions is the replica test's topic size.
const partitions = 4

// TestGivenTwoReplicasInOneKafkaGroupWhenOneIsKilledThenTheSurvivorTakesItsPartitionsOverAndTheTableEqualsTheExpectedOne
// runs two `pipe run` processes in one consumer group on a 4-partition
// topic whose records are keyed (and partitioned) by the window key, with
// durable window state in Redis and PostgreSQL upserts. Once both hold
// partitions and every partition has a committed checkpoint, one replica
// is SIGKILLed while more input arrives; after its session times out
// (session_timeout: 2s) the survivor owns all four partitions, restores
// their state from the store, and the table must equal the windows
// computed from the input, exactly.
func TestGivenTwoReplicasInOneKafkaGroupWhenOneIsKilledThenTheSurvivorTakesItsPartitionsOverAndTheTableEqualsTheExpectedOne(t *testing.T) {
	n := size()
	topic, cl, db, file := kafkaWindow(t, "replica", partitions, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	// Record i has key k(i%keys) and goes to partition (i%keys)%partitions:
	// one key, one partition (co-partitioned, as the window needs).
	ends := make([]int64, partitions) // records per partition
	produce := func(lo, hi int) {
		var rs []*kgo.Record
		for i := lo; i < hi; i++ {
			p := int32(i % keys % partitions)
			rs = append(rs, &kgo.Record{Partition: p, Key: fmt.Appendf(nil, "k%d", i%keys),
				Value: fmt.Appendf(nil, `{"k":"k%d","ts":%d,"v":%d}`, i%keys, int64(i)*100, i)})
			ends[p]++
		}
		if err := cl.ProduceSync(t.Context(), rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	committed := func() []int64 {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Group = "win"
		rt := kmsg.NewOffsetFetchRequestTopic()
		rt.Topic = topic
		for p := range int32(partitions) {
			rt.Partitions = append(rt.Partitions, p)
		}
		req.Topics = append(req.Topics, rt)
		out := make([]int64, partitions)
		for i := range out {
			out[i] = -1
		}
		resp, err := req.RequestWith(t.Context(), cl)
		if err != nil || len(resp.Topics) == 0 {
			return out
		}
		for _, p := range resp.Topics[0].Partitions {
			out[p.Partition] = p.Offset
		}
		return out
	}

	// Given two replicas that share the group's four partitions,
	a, b := run(t, file), run(t, file)
	poll(t, "both replicas to hold partitions", func() bool { return assignedMembers(t, cl) == 2 })
	// and a first part of the input committed in every partition (so each
	// replica committed checkpoints of its partitions),
	produce(0, n/2)
	poll(t, "a commit in every partition", func() bool {
		for _, off := range committed() {
			if off <= 0 {
				return false
			}
		}
		return true
	})
	// when more input arrives and one replica is SIGKILLed mid-stream,
	produce(n/2, 3*n/4)
	if err := b.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = b.Wait()
	t.Logf("killed one replica; committed offsets then %v of %v", committed(), ends)
	killed := time.Now()
	// and the rest arrives, with a closing record per partition whose
	// event time closes every window of that partition,
	produce(3*n/4, n)
	for p := range int32(partitions) {
		if err := cl.ProduceSync(t.Context(), &kgo.Record{Partition: p, Key: []byte("end"),
			Value: fmt.Appendf(nil, `{"k":"end","ts":%d,"v":0}`, int64(n)*100+5000)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		ends[p]++
	}
	// then the survivor takes the dead replica's partitions over and the
	// table equals the windows computed directly: none missing, none
	// counted twice, exact values.
	want := expected(n)
	poll(t, "the table to be complete and every offset committed", func() bool {
		off := committed()
		for p := range off {
			if off[p] != ends[p] {
				return false
			}
		}
		return db.count(t) == len(want)
	})
	t.Logf("the survivor finished %s after the kill", time.Since(killed).Round(time.Millisecond))
	stop(t, a, "the survivor")
	db.check(t, want)
}

// assignedMembers counts the members of group win that hold at least one
// partition in a stable group.
func assignedMembers(t *testing.T, cl *kgo.Client) int {
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{"win"}
	resp, err := req.RequestWith(t.Context(), cl)
	if err != nil || len(resp.Groups) == 0 || resp.Groups[0].State != "Stable" {
		return 0
	}
	n := 0
	for _, m := range resp.Groups[0].Members {
		var a kmsg.ConsumerMemberAssignment
		if a.ReadFrom(m.MemberAssignment) != nil {
			continue
		}
		for _, tp := range a.Topics {
			if len(tp.Partitions) > 0 {
				n++
				break
			}
		}
	}
	return n
}
