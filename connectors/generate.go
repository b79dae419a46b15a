package connectors

import (
	"context"
	"time"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/expr"
	"github.com/pipe-dsl/pipe/pipeline"
)

type generateConfig struct {
	Count    int64         `pipe:"count" desc:"How many messages to produce; 0 means unbounded." example:"1000" min:"0"`
	Interval time.Duration `pipe:"interval" desc:"Pause between messages; 0 produces as fast as downstream accepts." example:"1ms" min:"0"`
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

func (g *generate) Read(ctx context.Context, out pipeline.Outlet) error {
	var tick pipeline.Timer
	if g.cfg.Interval > 0 {
		tick = g.clock.NewTimer(g.cfg.Interval)
		defer tick.Stop()
	}
	for seq := int64(1); g.cfg.Count == 0 || seq <= g.cfg.Count; seq++ {
		if tick != nil && seq > 1 {
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C():
				tick.Reset(g.cfg.Interval)
			}
		} else if ctx.Err() != nil {
			return nil
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
