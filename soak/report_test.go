//go:build soak

package soak

import (
	"fmt"
	"io"
	"testing"
	"text/tabwriter"
	"time"
)

// Bounds on growth: the peak over the second half of the run against the
// peak over the first quarter (warm-up: buffers fill, the heap finds its
// size).
const (
	rssFactor      = 1.5
	rssSlack       = 16 << 20 // bytes
	goroutineSlack = 8
)

type report struct {
	duration                            time.Duration
	produced, delivered, dead, filtered int64
	deduped                             int64
	acked, nacked                       int64
	samples                             []sample
}

func (r report) print(w io.Writer) {
	peakRSS, gmin, gmax := int64(0), 0, 0
	for i, s := range r.samples {
		peakRSS = max(peakRSS, s.rss)
		if i == 0 || s.goroutines < gmin {
			gmin = s.goroutines
		}
		gmax = max(gmax, s.goroutines)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "duration\t%s\n", r.duration.Round(time.Millisecond))
	fmt.Fprintf(tw, "messages\t%d\n", r.produced)
	fmt.Fprintf(tw, "msgs/s\t%.0f\n", float64(r.produced)/r.duration.Seconds())
	fmt.Fprintf(tw, "peak RSS\t%.1f MiB\n", float64(peakRSS)/(1<<20))
	fmt.Fprintf(tw, "goroutines\tmin %d, max %d\n", gmin, gmax)
	fmt.Fprintf(tw, "delivered\t%d\n", r.delivered)
	fmt.Fprintf(tw, "dead-lettered\t%d\n", r.dead)
	fmt.Fprintf(tw, "filtered\t%d\n", r.filtered)
	fmt.Fprintf(tw, "deduplicated\t%d\n", r.deduped)
	fmt.Fprintf(tw, "acked / nacked\t%d / %d\n", r.acked, r.nacked)
	fmt.Fprintf(tw, "samples\t%d\n", len(r.samples))
	tw.Flush()
}

// checkFlat fails if RSS or goroutines grew after warm-up.
func (r report) checkFlat(t *testing.T) {
	t.Helper()
	n := len(r.samples)
	if n < 8 {
		t.Logf("only %d samples: too short to judge growth", n)
		return
	}
	warm, late := r.samples[:n/4], r.samples[n/2:]
	peak := func(ss []sample) (rss int64, g int) {
		for _, s := range ss {
			rss, g = max(rss, s.rss), max(g, s.goroutines)
		}
		return
	}
	warmRSS, warmG := peak(warm)
	lateRSS, lateG := peak(late)
	if limit := int64(float64(warmRSS)*rssFactor) + rssSlack; lateRSS > limit {
		t.Errorf("RSS grew: peak %d MiB in the second half, over %d MiB (%.1fx first-quarter peak %d MiB + %d MiB)",
			lateRSS>>20, limit>>20, rssFactor, warmRSS>>20, rssSlack>>20)
	}
	if lateG > warmG+goroutineSlack {
		t.Errorf("goroutines grew: %d in the second half, first-quarter peak %d (+%d allowed)", lateG, warmG, goroutineSlack)
	}
}
