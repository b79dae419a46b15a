package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/go-logr/logr"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	xrate "golang.org/x/time/rate"
)

// Libraries that log on their own (go-redis, the OpenTelemetry SDK and its
// exporters, anything using the standard log package) log through libLog:
// the run's slog logger, in its format, at most libLogBurst records at once
// and libLogRate a second; what is dropped is counted on the next record
// as "suppressed".
const (
	libLogRate  = 5
	libLogBurst = 10
)

// libLog is the handler the libraries' loggers forward to; installing it
// once per process (libHooks) and swapping its target per run keeps the
// globals those libraries offer set only once.
var libLog = &limitedHandler{lim: xrate.NewLimiter(libLogRate, libLogBurst)}

var libHooks sync.Once

// routeLibraryLogs sends library logs to logger until restore is called.
func routeLibraryLogs(logger *slog.Logger) (restore func()) {
	libHooks.Do(func() {
		redis.SetLogger(redisLogger{})
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			slog.New(libLog).Warn("opentelemetry: "+err.Error(), "lib", "otel")
		}))
		otel.SetLogger(logr.FromSlogHandler(libLog.WithAttrs([]slog.Attr{slog.String("lib", "otel")})))
	})
	prev := libLog.target.Swap(&handlerBox{logger.Handler()})
	prevOut, prevFlags, prevPrefix := log.Writer(), log.Flags(), log.Prefix()
	log.SetOutput(stdlogWriter{})
	log.SetFlags(0)
	log.SetPrefix("")
	return func() {
		libLog.target.Store(prev)
		log.SetOutput(prevOut)
		log.SetFlags(prevFlags)
		log.SetPrefix(prevPrefix)
	}
}

type handlerBox struct{ h slog.Handler }

// limitedHandler forwards records to its target, rate-limited; with no
// target it drops them.
type limitedHandler struct {
	target     atomic.Pointer[handlerBox]
	lim        *xrate.Limiter
	suppressed atomic.Int64
	attrs      []slog.Attr
}

var _ slog.Handler = (*limitedHandler)(nil)

func (h *limitedHandler) Enabled(ctx context.Context, l slog.Level) bool {
	t := h.target.Load()
	return t != nil && t.h.Enabled(ctx, l)
}

func (h *limitedHandler) Handle(ctx context.Context, r slog.Record) error {
	t := h.target.Load()
	if t == nil {
		return nil
	}
	if !h.lim.Allow() {
		h.suppressed.Add(1)
		return nil
	}
	r.AddAttrs(h.attrs...)
	if n := h.suppressed.Swap(0); n > 0 {
		r.AddAttrs(slog.Int64("suppressed", n))
	}
	return t.h.Handle(ctx, r)
}

// WithAttrs returns a handler sharing h's target, limiter and count.
func (h *limitedHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &sharedHandler{h, append(h.attrs[:len(h.attrs):len(h.attrs)], as...)}
}

func (h *limitedHandler) WithGroup(string) slog.Handler { return h }

// sharedHandler is a limitedHandler with attributes of its own.
type sharedHandler struct {
	base  *limitedHandler
	attrs []slog.Attr
}

var _ slog.Handler = (*sharedHandler)(nil)

func (s *sharedHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return s.base.Enabled(ctx, l)
}

func (s *sharedHandler) Handle(ctx context.Context, r slog.Record) error {
	r.AddAttrs(s.attrs...)
	return s.base.Handle(ctx, r)
}

func (s *sharedHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &sharedHandler{s.base, append(s.attrs[:len(s.attrs):len(s.attrs)], as...)}
}

func (s *sharedHandler) WithGroup(string) slog.Handler { return s }

// redisLogger is go-redis's internal.Logging.
type redisLogger struct{}

func (redisLogger) Printf(ctx context.Context, format string, v ...any) {
	slog.New(libLog).WarnContext(ctx, strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: "), "lib", "go-redis")
}

// stdlogWriter takes the standard log package's output, one line a write.
type stdlogWriter struct{}

var _ io.Writer = stdlogWriter{}

func (stdlogWriter) Write(p []byte) (int, error) {
	slog.New(libLog).Warn(strings.TrimRight(string(p), "\n"), "lib", "log")
	return len(p), nil
}
