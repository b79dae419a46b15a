package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/pipe-dsl/pipe/live"
)

// defaultAddr is where pipe tap and pipe top look for pipe run --http.
const defaultAddr = "127.0.0.1:9464"

// cmdTap prints the messages leaving a node of a running pipeline as
// NDJSON, from the tap endpoint of pipe run --http.
func cmdTap(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tap", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", defaultAddr, "`ADDR` of the pipe run --http server")
	n := fs.Int("n", 0, "stop after `N` messages (default: until interrupted)")
	filter := fs.String("filter", "", "print only messages for which the CEL condition `EXPR` on msg is true")
	meta := fs.Bool("meta", false, "include each message's metadata")
	token := fs.String("token", "", "bearer `TOKEN` of the server (default: $PIPE_HTTP_TOKEN)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: pipe tap [--addr ADDR] [-n N] [--filter CEL] [--meta] NODE[.port]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitConfig
	}
	if fs.NArg() != 1 || *n < 0 {
		fs.Usage()
		return exitConfig
	}
	node, port, hasPort := strings.Cut(fs.Arg(0), ".")
	q := url.Values{}
	if hasPort {
		q.Set("port", port)
	}
	if *n > 0 {
		q.Set("n", strconv.Itoa(*n))
	}
	if *filter != "" {
		q.Set("filter", *filter)
	}
	if *meta {
		q.Set("meta", "1")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	resp, code := apiGet(ctx, *addr, "/api/v1/tap/"+url.PathEscape(node)+"?"+q.Encode(), *token, stderr, "tap")
	if resp == nil {
		return code
	}
	defer resp.Body.Close()
	seen, skipped := 0, int64(0)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		var l live.TapLine
		if err := json.Unmarshal(sc.Bytes(), &l); err == nil {
			skipped = l.Skipped
		}
		seen++
		stdout.Write(append(sc.Bytes(), '\n'))
	}
	fmt.Fprintf(stderr, "pipe tap: %d messages from %s, %d skipped while this reader was behind\n", seen, fs.Arg(0), skipped)
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		fmt.Fprintf(stderr, "pipe tap: %v\n", err)
		return exitRuntime
	}
	return exitOK
}

// apiGet GETs path from the pipe run --http server at addr. On failure it
// reports to stderr and returns a nil response and the exit code: 2 for a
// request the server refused as bad (unknown node, bad filter), 1 otherwise.
func apiGet(ctx context.Context, addr, path, token string, stderr io.Writer, cmd string) (*http.Response, int) {
	if token == "" {
		token = os.Getenv("PIPE_HTTP_TOKEN")
	}
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+httpAddr(addr)+path, nil)
	if err != nil {
		fmt.Fprintf(stderr, "pipe %s: --addr %s: %v\n", cmd, addr, err)
		return nil, exitConfig
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "pipe %s: %v (is pipe run --http %s running?)\n", cmd, err, addr)
		return nil, exitRuntime
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
		fmt.Fprintf(stderr, "pipe %s: %s: %s\n", cmd, resp.Status, strings.TrimSpace(string(b)))
		if resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusNotFound {
			return nil, exitConfig
		}
		return nil, exitRuntime
	}
	return resp, exitOK
}
