package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pipe-dsl/pipe/live"
)

// chromium returns the path of a headless-capable Chromium, or skips the
// test with the reason; in CI (CI=true or PIPE_REQUIRE_SERVICES=1) a
// missing browser fails the test instead (.ci/run installs it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" || os.Getenv("PIPE_REQUIRE_SERVICES") == "1" {
		t.Fatal("chromium is not installed (apt-get install -y chromium); required in CI")
	}
	t.Skip("chromium is not installed (apt-get install -y chromium): the live page's browser test needs it")
	return ""
}

// pageRow is what the page's table shows for a node.
type pageRow struct{ In, Out, Failed, DeadLettered int64 }

// pageState reads the update number and table of the page.
const pageState = `(() => {
  const rows = {};
  for (const td of document.querySelectorAll("#table td[data-field]")) {
    const r = rows[td.dataset.node] = rows[td.dataset.node] || {};
    r[td.dataset.field] = td.textContent;
  }
  const out = {};
  for (const [n, r] of Object.entries(rows)) out[n] = {In: +r.in, Out: +r.out, Failed: +r.failed, DeadLettered: +r.dead_lettered};
  return {seq: +document.body.dataset.seq, rows: out};
})()`

// Given pipe run --http on a pipeline with a throttle, a batch and a
// failing sink behind a breaker, when the live page is open in headless
// Chromium, then its counts move, equal /api/v1/stats and /metrics within
// one update, and the sink's breaker shows open.
func TestTheLivePageInABrowserShowsWhatTheAPIAndMetricsSay(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI and starts a browser")
	}
	browser := chromium(t)
	bin := buildPipe(t)
	addr, _ := serving(t, bin, writeFile(t, "live.yaml", demoPipeline), nil, "--http", "127.0.0.1:0")
	base := "http://" + addr

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(browser), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1400, 820),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()

	// When the page is loaded and its counts move
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	poll := func(what, expr string) {
		t.Helper()
		_, err := chromedp.Run(bctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(30*time.Second)))
		must(what, err)
	}
	must("load the page", chromedp.Do(bctx, chromedp.Navigate(base+"/")))
	poll("see the counts move", `+document.querySelector('td[data-node="sink"][data-field="in"]')?.textContent > 0`)

	// Then the page's numbers are those of /api/v1/stats of the same update
	type state struct {
		Seq  uint64
		Rows map[string]pageRow
	}
	matched := false
	for try := 0; try < 20 && !matched; try++ {
		page, err := chromedp.Run(bctx, chromedp.Evaluate[state](pageState))
		must("read the page", err)
		api := apiStats(t, base)
		if api.Seq > page.Seq+1 {
			t.Fatalf("the page shows update %d, the API %d: more than one update behind", page.Seq, api.Seq)
		}
		if api.Seq != page.Seq {
			continue
		}
		for _, n := range api.Nodes {
			want := pageRow{n.In, n.Out, n.Failed, n.DeadLettered}
			if got := page.Rows[n.Name]; got != want {
				t.Fatalf("update %d: page shows %s = %+v, /api/v1/stats %+v", page.Seq, n.Name, got, want)
			}
		}
		// and /metrics, scraped after that update, lies between it and the next.
		scraped := metricValue(t, base, "pipe_node_messages_in_total", "sink")
		next := apiStatsAfter(t, base, api.Seq)
		if in, later := float64(page.Rows["sink"].In), float64(nodeOf(next, "sink").In); scraped < in || scraped > later {
			t.Fatalf("/metrics sink in = %v, want between the page's %v and the next update's %v", scraped, in, later)
		}
		matched = true
	}
	if !matched {
		t.Fatal("the page and /api/v1/stats never showed the same update in 20 reads")
	}

	// And the breaker in front of the failing sink turns open, in colour
	poll("see the breaker open", `document.getElementById("node-sink").classList.contains("breaker-open")`)
	// And a click on the node shows its settings and recent errors
	must("click the sink", chromedp.Do(bctx, chromedp.Click(chromedp.CSS("#node-sink .box"))))
	poll("see the recent errors", `document.querySelectorAll("#errors li.err").length > 0`)
	panel, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#panel")))
	must("read the panel", err)
	for _, want := range []string{"fail_rate: 1.0", "breaker:", "sink_error"} {
		if !strings.Contains(panel, want) {
			t.Errorf("the node panel lacks %q:\n%s", want, panel)
		}
	}
	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	must("take a screenshot", err)
	out := filepath.Join(t.TempDir(), "live.png")
	if os.Getenv("UPDATE_SCREENSHOT") == "1" {
		out = filepath.Join("..", "..", "docs", "img", "live.png")
	}
	if err := os.WriteFile(out, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", out, len(shot))
}

func apiStats(t *testing.T, base string) live.Snapshot {
	t.Helper()
	code, body := httpGet(t, base+"/api/v1/stats")
	var s live.Snapshot
	if code != 200 || json.Unmarshal([]byte(body), &s) != nil {
		t.Fatalf("GET /api/v1/stats = %d %.200s", code, body)
	}
	return s
}

// apiStatsAfter waits for the snapshot after seq, following the event
// stream.
func apiStatsAfter(t *testing.T, base string, seq uint64) live.Snapshot {
	t.Helper()
	resp, err := httpClientStream(base + "/api/v1/stats/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Close()
	sc := bufio.NewScanner(resp)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			var s live.Snapshot
			if json.Unmarshal([]byte(data), &s) == nil && s.Seq > seq {
				return s
			}
		}
	}
	t.Fatalf("stream ended before the update after %d: %v", seq, sc.Err())
	return live.Snapshot{}
}

func nodeOf(s live.Snapshot, name string) live.Node {
	for _, n := range s.Nodes {
		if n.Name == name {
			return n
		}
	}
	return live.Node{}
}

// metricValue is the value of metric for node in /metrics.
func metricValue(t *testing.T, base, metric, node string) float64 {
	t.Helper()
	_, body := httpGet(t, base+"/metrics")
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, metric+"{") && strings.Contains(line, fmt.Sprintf("node=%q", node)) {
			v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			if err == nil {
				return v
			}
		}
	}
	t.Fatalf("/metrics has no %s for node %s", metric, node)
	return 0
}

func httpClientStream(url string) (interface {
	Read([]byte) (int, error)
	Close() error
}, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}
