package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// LatencyBuckets are the upper bounds of pipe_node_latency_seconds.
var LatencyBuckets = []float64{
	1e-6, 5e-6, 10e-6, 50e-6, 100e-6, 500e-6,
	1e-3, 5e-3, 10e-3, 50e-3, 100e-3, 500e-3, 1, 5, 10,
}

var latencyDesc = prometheus.NewDesc("pipe_node_latency_seconds",
	"Duration of Process (stages) or Write (sinks) calls.",
	[]string{"pipeline", "node", "kind", "role"}, nil)

// latencyCollector rebuckets each node's in-process latency histogram into
// LatencyBuckets at scrape time. The pipeline's buckets are 19% wide, so
// an observation may be counted one bucket up near a boundary.
//
// It is a Prometheus collector rather than an OpenTelemetry histogram
// because OTel histograms are recorded per observation, on the message path.
type latencyCollector struct{ stats StatsFunc }

func (c latencyCollector) Describe(ch chan<- *prometheus.Desc) { ch <- latencyDesc }

func (c latencyCollector) Collect(ch chan<- prometheus.Metric) {
	name, ss := c.stats()
	for _, s := range ss {
		l := s.Latency
		if l.Count == 0 {
			continue
		}
		cum := make(map[float64]uint64, len(LatencyBuckets))
		i := 0
		var acc uint64
		for _, b := range l.Buckets {
			le := b.Le.Seconds()
			for i < len(LatencyBuckets) && LatencyBuckets[i] < le {
				cum[LatencyBuckets[i]] = acc
				i++
			}
			acc += uint64(b.Count)
		}
		for ; i < len(LatencyBuckets); i++ {
			cum[LatencyBuckets[i]] = acc
		}
		sum := (time.Duration(l.Count) * l.Mean).Seconds()
		m, err := prometheus.NewConstHistogram(latencyDesc, acc, sum, cum, name, s.Name, s.Kind, s.Role.String())
		if err != nil {
			continue
		}
		ch <- m
	}
}
