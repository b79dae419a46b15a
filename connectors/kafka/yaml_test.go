package kafka_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/dsl"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/twmb/franz-go/pkg/kfake"
)

type sink struct {
	mu     sync.Mutex
	bodies []string
	got    chan struct{}
}

func (s *sink) Write(_ context.Context, m *pipeline.Message) error {
	s.mu.Lock()
	s.bodies = append(s.bodies, string(m.Body))
	n := len(s.bodies)
	s.mu.Unlock()
	if n == 100 {
		close(s.got)
	}
	return nil
}

// A pipeline file produces 100 generated messages to kfake, and a second
// one consumes them in a group: the kinds decode from YAML and round-trip.
func TestYAMLRoundTripThroughKfake(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	env := map[string]string{"BROKER": c.ListenAddrs()[0]}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	compile := func(src string, replace func(*dsl.Node) (any, bool)) *dsl.Compiled {
		t.Helper()
		cfg, err := dsl.Parse("test.yaml", []byte(src), &dsl.Options{Lookup: lookup})
		if err != nil {
			t.Fatal(err)
		}
		p, err := dsl.Compile(cfg, &dsl.CompileOptions{Options: dsl.Options{Lookup: lookup}, Replace: replace})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	produce := compile(`name: produce
source:
  generate: {count: 100, message: '{"id": seq}'}
sink:
  kafka:
    brokers: ["${BROKER}"]
    topic: orders
    key: string(msg.id % 7)
`, nil)
	if err := produce.Run(context.Background()); err != nil {
		t.Fatalf("produce: %v", err)
	}

	rec := &sink{got: make(chan struct{})}
	consume := compile(`name: consume
source:
  kafka:
    brokers: ["${BROKER}"]
    topics: [orders]
    group: yaml-test
sink:
  stdout: {}
`, func(n *dsl.Node) (any, bool) {
		if n.Role == pipeline.RoleSink {
			return rec, true
		}
		return nil, false
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- consume.Run(ctx) }()
	select {
	case <-rec.got:
	case <-time.After(20 * time.Second):
		t.Error("consumed fewer than 100 messages in 20s")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("consume: %v", err)
	}
	var want []string
	for i := 1; i <= 100; i++ {
		want = append(want, fmt.Sprintf(`{"id":%s}`, strconv.Itoa(i)))
	}
	got := slices.Clone(rec.bodies)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("consumed %d bodies %v, want ids 1..100", len(got), got)
	}
}
