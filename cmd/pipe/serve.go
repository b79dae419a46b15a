package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pipe-dsl/pipe/dsl"
	"github.com/pipe-dsl/pipe/expr"
	"github.com/pipe-dsl/pipe/live"
	"github.com/pipe-dsl/pipe/metrics"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/tracing"
)

// httpIdleTimeout closes keep-alive connections of the --http server that
// sit idle this long; a variable so that tests can shorten it.
var httpIdleTimeout = 60 * time.Second

// httpAddr is addr with a bare port (":9090") bound to loopback: the
// --http server listens on every interface only when told so by a host
// ("0.0.0.0:9090", "[::]:9090").
func httpAddr(addr string) string {
	if strings.HasPrefix(addr, ":") {
		return "127.0.0.1" + addr
	}
	return addr
}

// serveHTTP listens on addr (reported back as served) and serves the metrics exporter and the live
// page, API and taps of the watcher's current pipeline until stop is
// called. On a non-loopback address without a token it serves only
// /metrics, /healthz and /readyz, and says so loudly.
func serveHTTP(addr, token string, w *watcher, traces *tracing.Provider, logger *slog.Logger) (exp *metrics.Exporter, served string, stop func(), err error) {
	var spans metrics.SpanStatsFunc
	if traces.TracerProvider != nil {
		spans = func() metrics.SpanStats {
			s := traces.Stats()
			return metrics.SpanStats{Ended: s.Ended, Exported: s.Exported, Failed: s.Failed, Dropped: s.Dropped}
		}
	}
	exp, err = metrics.New(func() (string, []pipeline.NodeStats) {
		c := w.current()
		return c.Config.Name, c.Stats()
	}, spans)
	if err != nil {
		return nil, "", nil, err
	}
	ln, err := net.Listen("tcp", httpAddr(addr))
	if err != nil {
		_ = exp.Shutdown(context.Background())
		return nil, "", nil, err
	}
	public := !isLoopback(ln.Addr())
	ls := live.New(currentGraph(w), live.Options{
		Token: token, Public: public, Filter: tapFilter, Redact: redactor(w),
	})
	srv := &http.Server{Handler: ls.Handler(exp.Handler()), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: httpIdleTimeout}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { ls.Run(ctx) })
	wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("http server failed", "err", err)
		}
	})
	paths := "/metrics /healthz /readyz / /api/v1/stats /api/v1/stats/stream /api/v1/tap/{node}"
	if public && token == "" {
		paths = "/metrics /healthz /readyz"
		logger.Warn("--http listens on a non-loopback address without a token: only /metrics, /healthz and /readyz are served; set --http-token or PIPE_HTTP_TOKEN for the live page, API and taps",
			"addr", ln.Addr().String())
	}
	logger.Info("serving metrics", "addr", ln.Addr().String(), "paths", paths)
	return exp, ln.Addr().String(), func() {
		ls.Close()
		cancel()
		sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
		wg.Wait()
		_ = exp.Shutdown(sctx)
	}, nil
}

func isLoopback(a net.Addr) bool {
	t, ok := a.(*net.TCPAddr)
	return ok && t.IP.IsLoopback()
}

// currentGraph shows the watcher's current pipeline, drawing each one once.
func currentGraph(w *watcher) live.Current {
	var mu sync.Mutex
	var drawn *dsl.Compiled
	var g live.Graph
	return func() (*pipeline.Pipeline, live.Graph) {
		c := w.current()
		mu.Lock()
		defer mu.Unlock()
		if c != drawn {
			nodes, edges := dsl.GraphOf(c.Config, nil)
			drawn, g = c, live.Graph{Name: c.Config.Name, Nodes: nodes, Edges: edges}
		}
		return c.Pipeline, g
	}
}

// redactor hides the current pipeline's secret values ([dsl.Config.SecretValues]).
func redactor(w *watcher) func(string) string {
	var mu sync.Mutex
	var seen *dsl.Compiled
	var r *strings.Replacer
	return func(s string) string {
		c := w.current()
		mu.Lock()
		if c != seen {
			var pairs []string
			for _, v := range c.Config.SecretValues(nil) {
				pairs = append(pairs, v, "(hidden)")
			}
			seen, r = c, strings.NewReplacer(pairs...)
		}
		mu.Unlock()
		return r.Replace(s)
	}
}

// tapFilter compiles a tap's condition with pipe's one CEL environment, its
// cost bounded as every expression's is.
func tapFilter(src string) (func([]byte) (bool, error), error) {
	prog, err := expr.Compile(src, expr.WithBoolResult())
	if err != nil {
		return nil, err
	}
	return func(b []byte) (bool, error) {
		return prog.EvalBool(&expr.Input{Raw: b})
	}, nil
}
