package stages_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"go.uber.org/goleak"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/dsl"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

type none struct{}

// gateRegistry holds a source, a sink and a "gate" stage whose Process
// reports the message index on started and returns when release[index]
// is closed (or at the hard stop): latency the test controls.
func gateRegistry(started chan<- int, release []chan struct{}) *component.Registry {
	reg := component.NewRegistry()
	reg.MustRegister(component.Source("feed", "test feed", none{}, func(*none, component.Env) (pipeline.Source, error) {
		return pipelinetest.NewSource(), nil
	}))
	reg.MustRegister(component.Sink("rec", "test sink", none{}, func(*none, component.Env) (pipeline.Sink, error) {
		return &pipelinetest.Sink{}, nil
	}))
	reg.MustRegister(component.Stage("gate", "test stage", none{}, func(*none, component.Env) (any, error) {
		return pipelinetest.ProcessorFunc(func(ctx context.Context, m *pipeline.Message) (*pipeline.Message, error) {
			var i int
			fmt.Sscanf(string(m.Body), "m%d", &i)
			started <- i
			select {
			case <-release[i]:
				return m, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}), nil
	}))
	return reg
}

func numbered(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("m%d", i)
	}
	return out
}

func compileGate(t *testing.T, reg *component.Registry, src string, feed *pipelinetest.Source, sink *pipelinetest.Sink) *dsl.Compiled {
	t.Helper()
	opts := dsl.Options{Registry: reg}
	c, err := dsl.Parse("p.yaml", []byte(src), &opts)
	if err != nil {
		t.Fatal(err)
	}
	p, err := dsl.Compile(c, &dsl.CompileOptions{Options: opts, Replace: func(n *dsl.Node) (any, bool) {
		switch n.Role {
		case pipeline.RoleSource:
			return feed, true
		case pipeline.RoleSink:
			return sink, true
		}
		return nil, false
	}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOrderedWorkersFromYAMLKeepInputOrderUnderRandomLatency(t *testing.T) {
	const n, workers = 300, 4
	started := make(chan int, n)
	release := make([]chan struct{}, n)
	for i := range release {
		release[i] = make(chan struct{})
	}
	feed, sink := pipelinetest.NewSource(numbered(n)...), &pipelinetest.Sink{}
	p := compileGate(t, gateRegistry(started, release), `
source: {feed: {}}
stages:
  - {gate: {}, workers: 4, ordered: true, buffer: 8}
sink: {rec: {}}
`, feed, sink)
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background()) }()

	// First, all four workers hold an item (the reorder buffer is empty,
	// so they can); finish those last to first.
	var busy []int
	for range workers {
		busy = append(busy, <-started)
	}
	slices.Sort(busy)
	overtaken := 0
	for k := len(busy) - 1; k >= 0; k-- {
		if k > 0 {
			overtaken++
		}
		close(release[busy[k]])
	}
	busy = nil
	// Then finish whatever is in progress in random order, so later items
	// often finish before earlier ones.
	rng := rand.New(rand.NewPCG(7, 8))
	for range n - workers {
		for len(busy) == 0 || len(busy) < workers && len(started) > 0 {
			busy = append(busy, <-started)
		}
		k := rng.IntN(len(busy))
		if busy[k] != slices.Min(busy) {
			overtaken++
		}
		close(release[busy[k]])
		busy = slices.Delete(busy, k, k+1)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if overtaken == 0 {
		t.Fatal("no item finished before an earlier one; the test proved nothing")
	}
	if got := sink.Bodies(); !slices.Equal(got, numbered(n)) {
		t.Fatalf("output order differs from input order; first items: %v", got[:10])
	}
}

func TestNoWorkerOutlivesAHardStop(t *testing.T) {
	for _, ordered := range []bool{false, true} {
		t.Run(fmt.Sprintf("ordered=%v", ordered), func(t *testing.T) {
			const n = 20
			started := make(chan int, n)
			release := make([]chan struct{}, n) // never closed
			for i := range release {
				release[i] = make(chan struct{})
			}
			feed, sink := pipelinetest.NewSource(numbered(n)...), &pipelinetest.Sink{}
			p := compileGate(t, gateRegistry(started, release), fmt.Sprintf(`
source: {feed: {}}
stages:
  - {gate: {}, workers: 3, ordered: %v, buffer: 4}
sink: {rec: {}}
`, ordered), feed, sink)
			done := make(chan error, 1)
			go func() { done <- p.Run(context.Background()) }()
			for range 3 {
				<-started // every worker is inside Process
			}
			p.Kill()
			err := <-done
			if !errors.Is(err, pipeline.ErrDrainTimeout) {
				t.Fatalf("Run = %v, want a drain-timeout (abandoned) error", err)
			}
			if got := len(feed.Acked()); got != 0 {
				t.Fatalf("%d messages acked, none was delivered", got)
			}
			goleak.VerifyNone(t)
		})
	}
}
