package stages_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/dsl"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

// compile builds src with src's source replaced by feed and each sink
// named in sinks replaced by its recorder.
func compile(t *testing.T, src string, feed *pipelinetest.Source, sinks map[string]*pipelinetest.Sink) *dsl.Compiled {
	t.Helper()
	c, err := dsl.Parse("p.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := dsl.Compile(c, &dsl.CompileOptions{Replace: func(n *dsl.Node) (any, bool) {
		if n.Role == pipeline.RoleSource {
			return feed, true
		}
		if s, ok := sinks[n.Name]; ok {
			return s, true
		}
		return nil, false
	}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// eventually yields until cond holds; the test deadline bounds it.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if d, ok := t.Deadline(); ok && time.Until(d) < time.Second {
			t.Fatalf("never happened: %s", what)
		}
		runtime.Gosched()
	}
}

func stats(p *pipeline.Pipeline, node string) pipeline.NodeStats {
	for _, s := range p.Stats() {
		if s.Name == node {
			return s
		}
	}
	return pipeline.NodeStats{}
}

const fanOut = `
sources:
  in: {generate: {message: '{}'}}
stages:
  router:
    route:
      cases:
        - {name: errors, when: 'msg.level == "error"'}
    inputs: [in]
sinks:
  slow: {stdout: {}, inputs: [router.errors]}
  failing: {stdout: {}, inputs: [router.errors]}
dead_letter: {stdout: {}}
`

func TestAMessageReachingTwoSinksIsAckedOnlyAfterBoth(t *testing.T) {
	// Given a routed message read by a slow sink and a failing one,
	feed := pipelinetest.NewSource(`{"level":"error"}`, `{"level":"info"}`)
	gate := make(chan struct{})
	slow := &pipelinetest.Sink{Gate: gate, Entered: make(chan struct{}, 1)}
	failing := &pipelinetest.Sink{Fail: func(*pipeline.Message) error { return errors.New("disk full") }}
	dlq := &pipelinetest.Sink{}
	p := compile(t, fanOut, feed, map[string]*pipelinetest.Sink{"slow": slow, "failing": failing, "dead_letter": dlq})
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background()) }()

	// when the failing branch has dead-lettered it and the slow one still
	// holds it,
	<-slow.Entered
	eventually(t, "the failing branch dead-lettered the message", func() bool { return len(dlq.Bodies()) == 1 })
	// then the source has not been acked for it;
	if got := feed.Acked(); slices.Contains(got, 0) {
		t.Fatalf("source acked %v while the slow sink still held message 0", got)
	}
	// once the slow sink accepts it, it is acked (dead-lettering counts as
	// resolved), and the unmatched message was dropped as unrouted and acked.
	close(gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := feed.Acked(); !slices.Contains(got, 0) || !slices.Contains(got, 1) || len(feed.Nacked()) != 0 {
		t.Fatalf("acked %v, nacked %v; want both acked", got, feed.Nacked())
	}
	if got := slow.Bodies(); !slices.Equal(got, []string{`{"level":"error"}`}) {
		t.Fatalf("slow sink wrote %v", got)
	}
	var env pipeline.DeadLetter
	if err := json.Unmarshal([]byte(dlq.Bodies()[0]), &env); err != nil || env.Stage != "failing" || env.Reason != pipeline.ReasonSinkError {
		t.Fatalf("dead letter %s (%v), want one from sink failing with reason sink_error", dlq.Bodies()[0], err)
	}
	if got := stats(p.Pipeline, "router").Dropped; got != 1 {
		t.Fatalf("router dropped %d, want 1 (unrouted)", got)
	}
}

func TestABroadcastMessageIsNackedWhenOneBranchCannotDeliverIt(t *testing.T) {
	// Without a dead-letter sink, the failing branch nacks its copy.
	feed := pipelinetest.NewSource(`{"level":"error"}`)
	slow := &pipelinetest.Sink{}
	failing := &pipelinetest.Sink{Fail: func(*pipeline.Message) error { return errors.New("disk full") }}
	src := strings.Replace(fanOut, "dead_letter: {stdout: {}}\n", "", 1)
	p := compile(t, src, feed, map[string]*pipelinetest.Sink{"slow": slow, "failing": failing})
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(feed.Acked()) != 0 || feed.Nacked()[0] == nil || len(slow.Bodies()) != 1 {
		t.Fatalf("acked %v, nacked %v, slow wrote %v; want message 0 nacked after slow wrote it",
			feed.Acked(), feed.Nacked(), slow.Bodies())
	}
}

func TestABatchReachesASinkInOneWriteAndFailsMemberByMember(t *testing.T) {
	feed := pipelinetest.NewSource(`{"n":1}`, `{"n":2}`, `{"n":3}`)
	out := &pipelinetest.Sink{Fail: func(m *pipeline.Message) error {
		if len(m.Batch()) == 1 {
			return errors.New("rejected")
		}
		return nil
	}}
	dlq := &pipelinetest.Sink{}
	p := compile(t, `
source: {generate: {message: '{}'}}
stages:
  - batch: {size: 2}
sink: {stdout: {}}
dead_letter: {stdout: {}}
`, feed, map[string]*pipelinetest.Sink{"sink": out, "dead_letter": dlq})
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	// [1 2] is written in one call; [3] (the shutdown flush) fails, and its
	// member reaches the dead-letter sink as its own envelope.
	if out.Writes() != 1 || !slices.Equal(out.Bodies(), []string{`{"n":1}`, `{"n":2}`}) {
		t.Fatalf("sink: %d writes of %v, want 1 write of n=1,2", out.Writes(), out.Bodies())
	}
	if got := dlq.Bodies(); len(got) != 1 || !strings.Contains(got[0], `"payload":{"n":3}`) {
		t.Fatalf("dead letters %v, want the envelope of n=3", got)
	}
	if got := feed.Acked(); len(got) != 3 {
		t.Fatalf("acked %v, want all three (two delivered, one dead-lettered)", got)
	}
}

func TestTheFileSinkWritesABatchAsOneLinePerMember(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.ndjson")
	feed := pipelinetest.NewSource(`{"n":1}`, `{"n":2}`, `{"n":3}`)
	p := compile(t, `
source: {generate: {message: '{}'}}
stages:
  - batch: {size: 2}
sink: {file: {path: `+path+`}}
`, feed, nil)
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n"; got != want {
		t.Fatalf("file = %q, want %q", got, want)
	}
}

// holdSource sends its bodies, then waits for the soft stop.
type holdSource struct {
	*pipelinetest.Source
	sent chan struct{}
}

func (s *holdSource) Read(ctx context.Context, out pipeline.Outlet) error {
	if err := s.Source.Read(ctx, out); err != nil {
		return err
	}
	close(s.sent)
	<-ctx.Done()
	return nil
}

func TestTheSoftStopFlushesAPartialBatchWithoutWaitingForMaxWait(t *testing.T) {
	// Given a batch with max_wait 1h on a clock that never moves,
	feed := &holdSource{Source: pipelinetest.NewSource(`{"n":1}`, `{"n":2}`), sent: make(chan struct{})}
	out := &pipelinetest.Sink{}
	c, err := dsl.Parse("p.yaml", []byte(`
source: {generate: {message: '{}'}}
stages:
  - batch: {size: 100, max_wait: 1h}
sink: {stdout: {}}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := dsl.Compile(c, &dsl.CompileOptions{
		Clock: pipelinetest.NewFakeClock(time.Unix(0, 0)),
		Replace: func(n *dsl.Node) (any, bool) {
			switch n.Role {
			case pipeline.RoleSource:
				return feed, true
			case pipeline.RoleSink:
				return out, true
			}
			return nil, false
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	<-feed.sent
	// when the pipeline is stopped (SIGINT in pipe run),
	cancel()
	// then the batch leaves at once and both messages are acked.
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if out.Writes() != 1 || len(out.Bodies()) != 2 || len(feed.Acked()) != 2 {
		t.Fatalf("sink: %d writes of %v; acked %v", out.Writes(), out.Bodies(), feed.Acked())
	}
}
