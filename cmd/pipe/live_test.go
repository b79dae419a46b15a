package main

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/pipe-dsl/pipe/dsl"
	"github.com/pipe-dsl/pipe/live"
	"github.com/pipe-dsl/pipe/tracing"
)

// demoPipeline has what the live view shows: a throttle, a batch, and a
// sink that fails every write behind a breaker, which opens.
const demoPipeline = `
name: live-demo
source: {generate: {count: 0, interval: 2ms, message: '{"id": seq, "user": "u" + string(seq % 7)}'}}
stages:
  - throttle: {rate: 200, burst: 10}
  - batch: {size: 10, max_wait: 100ms}
sink:
  chaos: {fail_rate: 1.0, latency: 5ms}
  breaker: {failure_threshold: 3, recovery_timeout: 2s}
dead_letter: {drop: {}}
`

// serving starts pipe run --http with args on file and returns the address
// it serves on and what it logged up to that address.
func serving(t *testing.T, bin, file string, env []string, args ...string) (addr, logged string) {
	t.Helper()
	cmd := exec.Command(bin, append(append([]string{"run", "--quiet", "--log-format", "json"}, args...), file)...)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	// --quiet leaves out "pipeline started", so the address line, logged
	// after any warning about the address, ends what is read here. A run
	// that never logs it fails the test at the deadline instead of hanging.
	deadline := time.AfterFunc(time.Minute, func() { _ = cmd.Process.Kill() })
	defer deadline.Stop()
	var log strings.Builder
	sc := bufio.NewScanner(stderr)
	for addr == "" && sc.Scan() {
		log.WriteString(sc.Text() + "\n")
		var rec struct{ Msg, Addr string }
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "serving metrics" {
			addr = rec.Addr
		}
	}
	go io.Copy(io.Discard, stderr)
	if addr == "" {
		t.Fatalf("pipe run did not log its address:\n%s", log.String())
	}
	return addr, log.String()
}

func httpGet(t *testing.T, url string, header ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if len(header) == 2 {
		req.Header.Set(header[0], header[1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHTTPAddrBindsABarePortToLoopback(t *testing.T) {
	for in, want := range map[string]string{
		":9090": "127.0.0.1:9090", "0.0.0.0:9090": "0.0.0.0:9090", "[::]:9090": "[::]:9090", "localhost:1": "localhost:1",
	} {
		if got := httpAddr(in); got != want {
			t.Errorf("httpAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

// A non-loopback --http without a token serves metrics and probes only,
// and says so; with PIPE_HTTP_TOKEN the API answers the token's bearer.
func TestANonLoopbackHTTPServesTheAPIOnlyWithAToken(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI")
	}
	ip := nonLoopbackIP(t)
	bin := buildPipe(t)
	file := writeFile(t, "live.yaml", demoPipeline)

	addr, logged := serving(t, bin, file, nil, "--http", net.JoinHostPort(ip, "0"))
	if !strings.Contains(logged, "non-loopback address without a token") {
		t.Errorf("no warning about the open address in:\n%s", logged)
	}
	if code, _ := httpGet(t, "http://"+addr+"/metrics"); code != 200 {
		t.Errorf("/metrics = %d, want 200", code)
	}
	for _, path := range []string{"/", "/api/v1/stats", "/api/v1/tap/throttle"} {
		if code, _ := httpGet(t, "http://"+addr+path); code != http.StatusForbidden {
			t.Errorf("%s without a token = %d, want 403", path, code)
		}
	}

	addr, _ = serving(t, bin, file, []string{"PIPE_HTTP_TOKEN=tok-4f1e-live"}, "--http", net.JoinHostPort(ip, "0"))
	if code, _ := httpGet(t, "http://"+addr+"/api/v1/stats"); code != http.StatusUnauthorized {
		t.Errorf("/api/v1/stats without the token = %d, want 401", code)
	}
	if code, body := httpGet(t, "http://"+addr+"/api/v1/stats", "Authorization", "Bearer tok-4f1e-live"); code != 200 || !strings.Contains(body, `"pipeline":"live-demo"`) {
		t.Errorf("/api/v1/stats with the token = %d %.100s, want 200 and the stats", code, body)
	}
}

func nonLoopbackIP(t *testing.T) string {
	t.Helper()
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	t.Skip("no non-loopback IPv4 address on this machine")
	return ""
}

// An idle keep-alive connection to the --http server is closed after
// httpIdleTimeout.
func TestIdleKeepAliveConnectionsToTheHTTPServerAreClosed(t *testing.T) {
	defer func(d time.Duration) { httpIdleTimeout = d }(httpIdleTimeout)
	httpIdleTimeout = 100 * time.Millisecond
	c, err := dsl.Parse("live.yaml", []byte(demoPipeline), nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := dsl.Compile(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := &watcher{cur: p}
	_, addr, stop, err := serveHTTP(":0", "", w, &tracing.Provider{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Errorf("--http :0 serves on %s, want loopback", addr)
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	resp, err := http.ReadResponse(r, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /healthz = %v, %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	// The connection is now idle: the server must close it (EOF) well
	// before this deadline.
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("read on an idle keep-alive connection = %v, want EOF (closed by the server)", err)
	}
}

func TestTapPrintsNDJSONOfTheMessagesLeavingANode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI")
	}
	bin := buildPipe(t)
	addr, _ := serving(t, bin, writeFile(t, "live.yaml", demoPipeline), nil, "--http", "127.0.0.1:0")
	cmd := exec.Command(bin, "tap", "--addr", addr, "-n", "5", "--filter", "msg.id % 2 == 0", "throttle")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pipe tap: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 5 {
		t.Fatalf("pipe tap -n 5 printed %d lines, want 5:\n%s", len(lines), out)
	}
	for _, l := range lines {
		var v live.TapLine
		var body struct{ ID int64 }
		if err := json.Unmarshal([]byte(l), &v); err != nil || v.Node != "throttle" || json.Unmarshal(v.Body, &body) != nil || body.ID%2 != 0 {
			t.Fatalf("tap line %s: want NDJSON from throttle with an even id (err %v)", l, err)
		}
	}
	if !strings.Contains(stderr.String(), "5 messages from throttle, 0 skipped") {
		t.Errorf("pipe tap stderr = %q, want the count of messages and skips", stderr.String())
	}
	// A filter on a batch keeps the members that pass.
	out, err = exec.Command(bin, "tap", "--addr", addr, "-n", "1", "--filter", "msg.id % 5 == 0", "batch").Output()
	var batch live.TapLine
	if err != nil || json.Unmarshal(out, &batch) != nil || len(batch.Members) == 0 {
		t.Fatalf("pipe tap --filter on batch = %v %s, want one batch line with the members whose id is a multiple of 5", err, out)
	}
	for _, b := range batch.Members {
		var body struct{ ID int64 }
		if json.Unmarshal(b, &body) != nil || body.ID%5 != 0 {
			t.Errorf("pipe tap --filter 'msg.id %% 5 == 0' on batch kept member %s", b)
		}
	}
	cmd = exec.Command(bin, "tap", "--addr", addr, "nope")
	if b, err := cmd.CombinedOutput(); cmd.ProcessState.ExitCode() != exitConfig || !strings.Contains(string(b), `no node named "nope"`) {
		t.Errorf("pipe tap nope = %v %s, want exit 2 naming the node", err, b)
	}
}

// pipe top under a pseudo-terminal draws frames of the progress view's
// lines, sorted as asked, and switches order on a key.
func TestTopDrawsTheLiveTableInATerminal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI")
	}
	bin := buildPipe(t)
	addr, _ := serving(t, bin, writeFile(t, "live.yaml", demoPipeline), nil, "--http", "127.0.0.1:0")
	cmd := exec.Command(bin, "top", "--addr", addr, "--sort", "errors", "--interval", "200ms")
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 30, Cols: 140})
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	frames := make(chan string, 64)
	go func() {
		defer close(frames)
		buf := make([]byte, 64<<10)
		var acc string
		for {
			n, err := tty.Read(buf)
			acc += string(buf[:n])
			// A frame starts with the clear-screen sequence.
			for {
				parts := strings.SplitN(acc, "\x1b[H\x1b[2J", 3)
				if len(parts) < 3 {
					break
				}
				frames <- parts[1]
				acc = "\x1b[H\x1b[2J" + parts[2]
			}
			if err != nil {
				return
			}
		}
	}()
	// frame waits for a frame that satisfies ok, reading at most 50.
	frame := func(what string, ok func(lines []string) bool) []string {
		t.Helper()
		for range 50 {
			f, open := <-frames
			if !open {
				t.Fatalf("pipe top ended before a frame %s", what)
			}
			lines := strings.Split(strings.TrimSpace(strings.ReplaceAll(f, "\r", "")), "\n")
			if ok(lines) {
				return lines
			}
		}
		t.Fatalf("no frame %s in 50 frames", what)
		return nil
	}
	lines := frame("sorted by errors with the open breaker first", func(l []string) bool {
		return len(l) == 7 && strings.Contains(l[0], "sorted by errors") && strings.HasPrefix(l[2], "sink") && strings.Contains(l[2], "breaker open")
	})
	for _, want := range []string{"source ", "throttle ", "batch ", "dead_letter "} {
		if !strings.Contains(strings.Join(lines, "\n"), want) {
			t.Errorf("frame lacks node %q:\n%s", want, strings.Join(lines, "\n"))
		}
	}
	io.WriteString(tty, "r\n")
	frame("sorted by rate after typing r", func(l []string) bool { return strings.Contains(l[0], "sorted by rate") })
	io.WriteString(tty, "q\n")
	if code := wait(t, cmd); code != exitOK {
		t.Errorf("pipe top exit %d after q, want 0", code)
	}
}

// Secrets from the config never show on the live surfaces: not in the
// settings the page draws, not in a tapped message, not in recent errors.
func TestTheLiveSurfacesHideSecretValues(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI")
	}
	const secret = "tok-9c2e-LIVE-SECRET"
	bin := buildPipe(t)
	file := writeFile(t, "secret.yaml", `
name: secret
source: {stdin: {}}
sink:
  http: {url: "http://127.0.0.1:1/hook", token: "${LIVE_TOKEN}"}
dead_letter: {drop: {}}
`)
	cmd := exec.Command(bin, "run", "--quiet", "--log-format", "json", "--http", "127.0.0.1:0", file)
	cmd.Env = append(os.Environ(), "LIVE_TOKEN="+secret)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sc := bufio.NewScanner(stderr)
	addr := ""
	for addr == "" && sc.Scan() {
		var rec struct{ Msg, Addr string }
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "serving metrics" {
			addr = rec.Addr
		}
	}
	go io.Copy(io.Discard, stderr)
	base := "http://" + addr

	// A tap on the source, attached before the message is sent
	resp, err := http.Get(base + "/api/v1/tap/source?n=1&meta=1")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("tap: %v %v", resp, err)
	}
	defer resp.Body.Close()
	if _, err := io.WriteString(stdin, `{"note":"the token is `+secret+`"}`+"\n"); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.Contains(line, "(hidden)") || strings.Contains(line, secret) {
		t.Fatalf("tapped line = %q (%v), want the token shown as (hidden)", line, err)
	}
	// and the failure it causes, once the sink has failed it
	var errs string
	for try := 0; try < 100 && !strings.Contains(errs, "sink_error"); try++ {
		_, errs = httpGet(t, base+"/api/v1/nodes/sink/errors")
		if !strings.Contains(errs, "sink_error") {
			_ = apiStatsAfter(t, base, apiStats(t, base).Seq) // wait one update
		}
	}
	if !strings.Contains(errs, "sink_error") {
		t.Fatalf("recent errors of the sink = %s, want its failure", errs)
	}
	_, graph := httpGet(t, base+"/api/v1/graph")
	_, page := httpGet(t, base+"/")
	for what, text := range map[string]string{"recent errors": errs, "graph": graph, "page": page} {
		if strings.Contains(text, secret) {
			t.Errorf("%s shows the secret:\n%s", what, text)
		}
	}
	if !strings.Contains(graph, `"token: (hidden)"`) {
		t.Errorf("graph settings = %s, want token: (hidden)", graph)
	}
}
