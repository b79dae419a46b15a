package redis

import (
	"context"
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/pipe-dsl/pipe/connectors/internal/conntest"
	"github.com/pipe-dsl/pipe/pipeline"
)

func TestABatchIsOnePipelinedWriteOfEveryMember(t *testing.T) {
	rdb := goredis.NewClient(&goredis.Options{Addr: DefaultAddr})
	defer rdb.Close()
	if err := rdb.Ping(t.Context()).Err(); err != nil {
		conntest.Unavailable(t, "Redis on 127.0.0.1:6379", err)
	}
	key := fmt.Sprintf("pipe-test:batch:%d", time.Now().UnixNano())
	defer rdb.Del(context.Background(), key)
	s := &sink{cfg: sinkConfig{Addr: DefaultAddr, Stream: key, Field: "body", Meta: true, MaxLen: 2}}
	defer s.Close(context.Background())

	var members []*pipeline.Message
	for i := range 5 {
		m := pipeline.NewMessage(fmt.Appendf(nil, "m%d", i), nil)
		m.Meta = map[string]string{"k": "v", MetaID: "1-1"}
		members = append(members, m)
	}
	if err := s.Write(t.Context(), pipeline.NewBatch(members)); err != nil {
		t.Fatal(err)
	}
	entries, err := rdb.XRange(t.Context(), key, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	// MAXLEN ~ 2 trims whole nodes only, so all 5 may remain; order holds.
	last := entries[len(entries)-1]
	if last.Values["body"] != "m4" || last.Values["k"] != "v" || last.Values[MetaID] != nil {
		t.Errorf("last entry = %v, want body m4, k v and no %s", last.Values, MetaID)
	}
	if len(entries) > 5 {
		t.Errorf("%d entries, want at most 5", len(entries))
	}
}

func TestAWriteToAKeyOfAnotherTypeFails(t *testing.T) {
	rdb := goredis.NewClient(&goredis.Options{Addr: DefaultAddr})
	defer rdb.Close()
	if err := rdb.Ping(t.Context()).Err(); err != nil {
		conntest.Unavailable(t, "Redis on 127.0.0.1:6379", err)
	}
	key := fmt.Sprintf("pipe-test:string:%d", time.Now().UnixNano())
	defer rdb.Del(context.Background(), key)
	if err := rdb.Set(t.Context(), key, "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s := &sink{cfg: sinkConfig{Addr: DefaultAddr, Stream: key, Field: "body"}}
	defer s.Close(context.Background())
	if err := s.Write(t.Context(), pipeline.NewMessage([]byte("a"), nil)); err == nil {
		t.Error("Write to a string key = nil, want WRONGTYPE")
	}
}
