package stages

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/pipeline"
)

// pacingSecs is how long each pacing benchmark runs after its first
// admission: PACING_SECS, default 5 (the minimum).
func pacingSecs(b *testing.B) float64 {
	if v := os.Getenv("PACING_SECS"); v != "" {
		s, err := strconv.ParseFloat(v, 64)
		if err != nil || !(s > 0) {
			b.Fatalf("PACING_SECS=%q: want a positive number of seconds", v)
		}
		return s
	}
	return 5
}

// BenchmarkPacing drives a blocking throttle on the real clock, one message
// after another as fast as it admits them, and compares the time from the
// first admission to the last with the limit's promise: (n − burst)/rate for
// a token bucket, (n − limit)/limit windows for a saturated sliding window.
// It reports expected_s, actual_s, %off, excess: the most messages ahead
// of the limit at any admission, on the real clock (a late wake-up's
// catch-up), and loop_Mps: millions of messages per second the same loop
// reached just before with a limit it never meets (at 1,000,000/s under a
// heavy load, a loop_Mps near 1 says the consumer, not the throttle, set the
// pace). Run it with `make bench-pacing`; it is not a test: its numbers
// depend on the machine's load.
//
//	PACING_SECS=5 go test -run '^$' -bench Pacing -benchtime 1x ./stages/
func BenchmarkPacing(b *testing.B) {
	secs := pacingSecs(b)
	for _, tc := range []struct {
		rate  float64
		burst int
	}{
		{1, 1}, {100, 1}, {10_000, 1}, {10_000, 100}, {10_000, 1000},
		{100_000, 1}, {1_000_000, 1}, {1_000_000, 1000},
	} {
		b.Run(fmt.Sprintf("token_bucket/rate=%g/burst=%d", tc.rate, tc.burst), func(b *testing.B) {
			n := tc.burst + int(tc.rate*secs)
			expected := float64(n-tc.burst) / tc.rate
			allowed := func(i int, since float64) float64 { return float64(tc.burst) + tc.rate*since }
			benchPacing(b, func(c *throttleConfig) { c.Rate, c.Burst = tc.rate, tc.burst }, n, expected, allowed)
		})
	}
	for _, tc := range []struct {
		limit  int
		window time.Duration
	}{
		{1, time.Millisecond}, {10, time.Millisecond}, {100, 10 * time.Millisecond}, {1000, time.Second}, {1000, time.Millisecond},
	} {
		b.Run(fmt.Sprintf("sliding_window/limit=%d/window=%v", tc.limit, tc.window), func(b *testing.B) {
			windows := int(secs / tc.window.Seconds())
			n := tc.limit * (1 + windows)
			rate := float64(tc.limit) / tc.window.Seconds()
			allowed := func(i int, since float64) float64 {
				return float64(tc.limit) * (1 + float64(int(since/tc.window.Seconds())))
			}
			benchPacing(b, func(c *throttleConfig) {
				c.Algorithm, c.Limit, c.Window = "sliding_window", tc.limit, tc.window
			}, n, float64(n-tc.limit)/rate, allowed)
		})
	}
}

// benchPacing runs n messages through a throttle configured by set and
// reports how long they took against expected seconds. allowed(i, t) is
// how many may have passed t seconds after the first.
func benchPacing(b *testing.B, set func(c *throttleConfig), n int, expected float64, allowed func(i int, since float64) float64) {
	// The loop's own speed first, against a limit it never meets.
	const probe = 200_000
	secs, _ := runPaced(b, func(c *throttleConfig) { c.Rate, c.Burst = 1e15, 1 }, probe,
		func(i int, since float64) float64 { return 1e15 * since })
	loop := probe / secs
	var actual, excess float64
	for b.Loop() {
		actual, excess = runPaced(b, set, n, allowed)
	}
	b.ReportMetric(expected, "expected_s")
	b.ReportMetric(actual, "actual_s")
	b.ReportMetric(100*(actual-expected)/expected, "%off")
	b.ReportMetric(excess, "excess")
	b.ReportMetric(loop/1e6, "loop_Mps")
}

// runPaced passes n messages one after another through a new throttle
// configured by set, on the real clock, and returns the seconds from the
// first admission to the last and the most messages ahead of allowed.
func runPaced(b *testing.B, set func(c *throttleConfig), n int, allowed func(i int, since float64) float64) (secs, excess float64) {
	v, err := newThrottle(throttleCfg(set), component.Env{Clock: pipeline.SystemClock})
	if err != nil {
		b.Fatal(err)
	}
	th, ctx, m := v.(*throttle), context.Background(), msg("x")
	var first time.Time
	for i := range n {
		if _, err := th.Process(ctx, m); err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		if i == 0 {
			first = now
		}
		secs = now.Sub(first).Seconds()
		excess = max(excess, float64(i+1)-allowed(i, secs))
	}
	return secs, excess
}
