package state_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
	"github.com/pipe-dsl/pipe/state"
)

// Two replicas divide 4 partitions; when one dies, the other takes its
// partitions once their leases expired. A real replica calls Run (a round
// every TTL/3) with leases from its state backend's OpenLeases; here the
// rounds are played by hand on a fake clock.
func ExampleBalancer() {
	ctx := context.Background()
	clock := pipelinetest.NewFakeClock(time.Unix(0, 0))
	leases := &state.MemLeases{Clock: clock}
	replica := func(owner string) *state.Balancer {
		return &state.Balancer{Leases: leases, Group: "nats:ORDERS/pipe-orders", Owner: owner,
			Partitions: 4, TTL: 3 * time.Second, Clock: clock, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Start: func(p int) {}, Stop: func(p int) {}, Idle: func(p int) bool { return true }}
	}
	a, b := replica("a"), replica("b")
	for range 3 { // a round each, a second apart
		a.Round(ctx)
		b.Round(ctx)
		clock.Advance(time.Second)
	}
	fmt.Println("a", a.Held(), "b", b.Held())
	// a dies: it plays no more rounds.
	for range 4 {
		clock.Advance(time.Second)
		b.Round(ctx)
	}
	fmt.Println("b", b.Held())
	// Output:
	// a [0 1] b [2 3]
	// b [0 1 2 3]
}
