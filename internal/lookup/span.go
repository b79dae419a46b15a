package lookup

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

const tracerName = "github.com/pipe-dsl/pipe/internal/lookup"

// startSpan starts the span of one round trip, from the tracer of the
// first traced message in reqs, linked to every traced message's span.
// With no traced message it returns a non-recording span.
func startSpan(ctx context.Context, store string, reqs []Request) (context.Context, trace.Span) {
	var tp trace.TracerProvider
	links := make([]trace.Link, 0, len(reqs))
	for _, r := range reqs {
		if r.Trace == nil {
			continue
		}
		s := trace.SpanFromContext(r.Trace)
		if !s.SpanContext().IsValid() {
			continue
		}
		if tp == nil {
			tp = s.TracerProvider()
		}
		links = append(links, trace.Link{SpanContext: s.SpanContext()})
	}
	if tp == nil {
		return ctx, trace.SpanFromContext(context.Background())
	}
	return tp.Tracer(tracerName).Start(ctx, "lookup "+store,
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithLinks(links...),
		trace.WithAttributes(
			attribute.String("lookup.store", store),
			attribute.Int("lookup.keys", len(reqs))))
}

// endSpan records the round trip's outcome; the error text is the store's,
// which never carries a DSN or URL secret.
func endSpan(span trace.Span, found int, err error) {
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(attribute.Int("lookup.found", found))
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
}

// Annotate adds the cache outcome of a Get to the message's span.
func Annotate(msgCtx context.Context, res Result, err error) {
	s := trace.SpanFromContext(msgCtx)
	if !s.IsRecording() {
		return
	}
	outcome := string(res.Outcome)
	if err != nil {
		outcome = "error"
	}
	s.AddEvent("lookup", trace.WithAttributes(
		attribute.String("lookup.cache", outcome),
		attribute.Bool("lookup.found", res.Found)))
}
