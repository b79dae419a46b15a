package live

import (
	"time"

	"github.com/pipe-dsl/pipe/pipeline"
)

// Snapshot is the document of GET /api/v1/stats and of each event of
// /api/v1/stats/stream. Its JSON form is a stable, documented contract
// (docs/observability.md): fields may be added, never renamed or removed.
type Snapshot struct {
	Pipeline string `json:"pipeline"`
	// Seq numbers the snapshots of this server from 1; Time is when it was
	// taken. Rates are over the IntervalSeconds before Time.
	Seq             uint64    `json:"seq"`
	Time            time.Time `json:"time"`
	IntervalSeconds float64   `json:"interval_seconds"`
	Nodes           []Node    `json:"nodes"`
}

// Node is one node's counters, rates, queue and figures in a [Snapshot].
type Node struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	// Role is source, stage, sink or dead_letter.
	Role         string `json:"role"`
	In           int64  `json:"in"`
	Out          int64  `json:"out"`
	Failed       int64  `json:"failed"`
	Dropped      int64  `json:"dropped"`
	DeadLettered int64  `json:"dead_lettered"`
	Nacked       int64  `json:"nacked"`
	Acked        int64  `json:"acked"`
	// RateIn, RateOut and RateFailed are messages per second over the last
	// interval (for a source, RateIn counts messages produced).
	RateIn     float64 `json:"rate_in"`
	RateOut    float64 `json:"rate_out"`
	RateFailed float64 `json:"rate_failed"`
	// Queued of Buffer messages wait in the node's input; QueueFill is
	// their ratio (0 for sources, which have no input).
	Queued    int     `json:"queued"`
	Buffer    int     `json:"buffer"`
	QueueFill float64 `json:"queue_fill"`
	Latency   Latency `json:"latency"`
	// Breaker is "closed", "half-open" or "open" for a node behind a
	// circuit breaker, and absent otherwise.
	Breaker string   `json:"breaker,omitempty"`
	Figures []Figure `json:"figures"`
}

// Latency summarises a node's Process or Write calls in milliseconds.
type Latency struct {
	Count  int64   `json:"count"`
	MeanMS float64 `json:"mean_ms"`
	P50MS  float64 `json:"p50_ms"`
	P90MS  float64 `json:"p90_ms"`
	P99MS  float64 `json:"p99_ms"`
	MaxMS  float64 `json:"max_ms"`
}

// Figure is one of a node's own numbers ([pipeline.Figure]): a throttle's
// limited count, a breaker's state, a batch's flushes by reason.
type Figure struct {
	// Scope names a figure shared by many kinds ("breaker", "retry");
	// empty for the node kind's own figures.
	Scope      string  `json:"scope,omitempty"`
	Name       string  `json:"name"`
	Kind       string  `json:"kind"`
	Label      string  `json:"label,omitempty"`
	LabelValue string  `json:"label_value,omitempty"`
	Value      float64 `json:"value"`
	// Rate is the figure's change per second over the last interval, for
	// counters.
	Rate float64 `json:"rate,omitempty"`
}

var breakerStates = map[float64]string{0: "closed", 1: "half-open", 2: "open"}

// snapshot turns stats taken at now into a Snapshot, with rates against
// prev (taken dt earlier; nil or a different shape means no rates).
func snapshot(name string, seq uint64, now time.Time, cur []pipeline.NodeStats, prev *Snapshot) *Snapshot {
	s := &Snapshot{Pipeline: name, Seq: seq, Time: now, Nodes: make([]Node, len(cur))}
	dt := 0.0
	if prev != nil && len(prev.Nodes) == len(cur) {
		dt = now.Sub(prev.Time).Seconds()
	}
	s.IntervalSeconds = dt
	rate := func(now, before int64) float64 {
		if dt <= 0 {
			return 0
		}
		return float64(now-before) / dt
	}
	for i, c := range cur {
		n := Node{
			Name: c.Name, Kind: c.Kind, Role: c.Role.String(),
			In: c.In, Out: c.Out, Failed: c.Failed, Dropped: c.Dropped,
			DeadLettered: c.DeadLettered, Nacked: c.Nacked, Acked: c.Acked,
			Queued: c.Queued, Buffer: c.Buffer,
			Latency: Latency{
				Count: c.Latency.Count, MeanMS: ms(c.Latency.Mean), P50MS: ms(c.Latency.P50),
				P90MS: ms(c.Latency.P90), P99MS: ms(c.Latency.P99), MaxMS: ms(c.Latency.Max),
			},
			Figures: []Figure{},
		}
		if c.Buffer > 0 {
			n.QueueFill = float64(c.Queued) / float64(c.Buffer)
		}
		var p *Node
		if dt > 0 && prev.Nodes[i].Name == c.Name {
			p = &prev.Nodes[i]
			n.RateIn, n.RateOut, n.RateFailed = rate(c.In, p.In), rate(c.Out, p.Out), rate(c.Failed, p.Failed)
		}
		for _, f := range c.Figures {
			out := Figure{Scope: f.Scope, Name: f.Name, Kind: f.Kind.String(), Label: f.Label, LabelValue: f.LabelValue, Value: f.Value}
			if p != nil && f.Kind == pipeline.Counter {
				for _, pf := range p.Figures {
					if pf.Scope == f.Scope && pf.Name == f.Name && pf.LabelValue == f.LabelValue {
						out.Rate = (f.Value - pf.Value) / dt
					}
				}
			}
			if f.Scope == "breaker" && f.Name == "state" {
				n.Breaker = breakerStates[f.Value]
			}
			n.Figures = append(n.Figures, out)
		}
		s.Nodes[i] = n
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
