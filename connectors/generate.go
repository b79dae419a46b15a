package connectors

import (
	"context"
	"time"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/expr"
	"github.com/pipe-dsl/pipe/internal/pace"
	"github.com/pipe-dsl/pipe/pipeline"
)

type generateConfig struct {
	Count    int64         `pipe:"count" desc:"How many messages to produce; 0 means unbounded." example:"1000" min:"0"`
	Interval time.Duration `pipe:"interval" desc:"One message per interval, on a fixed timeline: a late timer wake-up produces the messages that came due meanwhile, so the rate is exactly 1/interval. 0 produces as fast as downstream accepts." example:"1ms" min:"0"`
	Message  *expr.Program `pipe:"message,required" desc:"CEL expression for each body, encoded as JSON. seq is the message number, from 1." example:"{\"id\": seq, \"level\": seq % 10 == 0 ? \"error\" : \"info\"}"`
}

func init() {
	component.Register(component.Source("generate",
		"Produces messages from a CEL expression of seq, for demos, tests and benchmarks.",
		generateConfig{}, newGenerate))
}

type generate struct {
	cfg   generateConfig
	clock pipeline.Clock
}

var _ pipeline.Source = (*generate)(nil)

func newGenerate(c *generateConfig, env component.Env) (pipeline.Source, error) {
	return &generate{cfg: *c, clock: env.Clock}, nil
}

// Read produces the messages. With an interval, message seq is due at
// start + (seq-1)·interval on a pace.Pacer's timeline; a wait that wakes late
// is followed at once by what came due meanwhile (up to pace.MaxLag), while
// time spent blocked downstream is not made up.
func (g *generate) Read(ctx context.Context, out pipeline.Outlet) error {
	var (
		pacer *pace.Pacer
		timer pipeline.Timer
	)
	if g.cfg.Interval > 0 {
		pacer = pace.New(pace.NewBucketEvery(g.cfg.Interval, 1))
		timer = g.clock.NewTimer(g.cfg.Interval)
		timer.Stop()
		defer timer.Stop()
	}
	for seq := int64(1); g.cfg.Count == 0 || seq <= g.cfg.Count; seq++ {
		if ctx.Err() != nil {
			return nil
		}
		if pacer != nil {
			now := g.clock.Now()
			if at, _ := pacer.Reserve(now); at.After(now) {
				timer.Reset(at.Sub(now))
				select {
				case <-ctx.Done():
					return nil
				case <-timer.C():
				}
				pacer.Admitted(at, g.clock.Now())
			}
		}
		body, decoded, err := g.cfg.Message.EvalJSON(&expr.Input{Seq: seq})
		if err != nil {
			return err
		}
		m := pipeline.NewMessage(body, nil)
		m.SetDecoded(decoded)
		if out.Send(ctx, m) != nil {
			return nil
		}
	}
	return nil
}
