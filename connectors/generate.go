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
	Interval time.Duration `pipe:"interval" desc:"One message per interval, on a fixed timeline: after a late timer wake-up or a slow evaluation the messages that came due meanwhile follow at once, so the rate is exactly 1/interval; time blocked downstream is not made up. 0 produces as fast as downstream accepts." example:"1ms" min:"0"`
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
	// tmpl writes the bodies when the message is an object literal it
	// can split; nil otherwise.
	tmpl *bodyTemplate
}

var _ pipeline.Source = (*generate)(nil)

func newGenerate(c *generateConfig, env component.Env) (pipeline.Source, error) {
	return &generate{cfg: *c, clock: env.Clock, tmpl: newBodyTemplate(c.Message)}, nil
}

// stallAtLeast is the shortest Send that counts as downstream holding the
// source back (see Read); shorter ones are the cost of a hand-off.
const stallAtLeast = time.Millisecond

// Read produces the messages. With an interval, message seq is due at
// start + (seq-1)·interval, a fixed timeline as time.Ticker keeps: a wait
// that wakes late, or an evaluation that takes long, is followed at once by
// what came due meanwhile (up to pace.MaxLag behind; further behind, the
// timeline restarts). Time blocked downstream is not made up: a Send that
// takes longer than an interval (and at least stallAtLeast) moves the
// timeline on by that long, so backpressure never turns into a burst.
func (g *generate) Read(ctx context.Context, out pipeline.Outlet) error {
	iv := g.cfg.Interval
	var (
		timer pipeline.Timer
		due   time.Time
		size  int // of the last body
	)
	if iv == 0 {
		return g.burst(ctx, out)
	}
	if iv > 0 {
		timer = g.clock.NewTimer(iv)
		timer.Stop()
		defer timer.Stop()
		due = g.clock.Now()
	}
	for seq := int64(1); g.cfg.Count == 0 || seq <= g.cfg.Count; seq++ {
		if ctx.Err() != nil {
			return nil
		}
		if iv > 0 {
			now := g.clock.Now()
			switch {
			case due.After(now):
				timer.Reset(due.Sub(now))
				select {
				case <-ctx.Done():
					return nil
				case <-timer.C():
				}
			case now.Sub(due) > pace.MaxLag:
				due = now
			}
		}
		body, err := g.body(seq, &size)
		if err != nil {
			return err
		}
		m := pipeline.NewMessage(body, nil)
		var sent time.Time
		if iv > 0 {
			sent = g.clock.Now()
		}
		if out.Send(ctx, m) != nil {
			return nil
		}
		if iv > 0 {
			due = due.Add(iv)
			if held := g.clock.Now().Sub(sent); held > max(iv, stallAtLeast) {
				due = due.Add(held)
			}
		}
	}
	return nil
}

// burstOf is how many messages generate makes before it hands them on
// together without an interval: a chain's worth at the default buffer
// (pipeline/chain.go), one channel operation for all of them.
const burstOf = 16

// burst is Read without an interval: as fast as downstream accepts, burstOf
// messages at a time through pipeline.SendAll. A burst is made in well
// under a millisecond and nothing waits to fill one, so no message is held
// back; the soft stop is checked between bursts.
func (g *generate) burst(ctx context.Context, out pipeline.Outlet) error {
	ms := make([]*pipeline.Message, 0, burstOf)
	size := 0
	for seq := int64(1); g.cfg.Count == 0 || seq <= g.cfg.Count; {
		if ctx.Err() != nil {
			return nil
		}
		ms = ms[:0]
		var err error
		for ; len(ms) < burstOf && (g.cfg.Count == 0 || seq <= g.cfg.Count); seq++ {
			var body []byte
			if body, err = g.body(seq, &size); err != nil {
				break
			}
			ms = append(ms, pipeline.NewMessage(body, nil))
		}
		if len(ms) > 0 && pipeline.SendAll(ctx, out, ms) != nil {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// body is message seq's body. Not decoded here: the next stage decodes
// what it reads. size is the last body's length, updated.
func (g *generate) body(seq int64, size *int) ([]byte, error) {
	if g.tmpl == nil {
		return g.cfg.Message.EvalBody(&expr.Input{Seq: seq})
	}
	// Sized for the last body and a few more digits, so that appending
	// rarely grows it.
	body, err := g.tmpl.write(seq, *size+8)
	*size = len(body)
	return body, err
}
