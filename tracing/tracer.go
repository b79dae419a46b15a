// Package tracing records a pipeline's messages as OpenTelemetry traces: a
// root span per source message and a child span per stage it visits.
package tracing

import (
	"context"
	"errors"
	"maps"
	"math/rand/v2"
	"net/textproto"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/pipe-dsl/pipe/pipeline"
)

// Span attribute keys.
const (
	AttrPipeline    = attribute.Key("pipe.pipeline")
	AttrKind        = attribute.Key("pipe.stage.kind")
	AttrSeq         = attribute.Key("message.seq")
	AttrID          = attribute.Key("message.id")
	AttrReason      = attribute.Key("pipe.reason")
	AttrDropReason  = attribute.Key("pipe.drop_reason")
	AttrBatchSize   = attribute.Key("batch.size")
	AttrFlushReason = attribute.Key("batch.flush_reason")
)

// Meta keys a source reads the incoming W3C trace context from, and sinks
// write the outgoing one to.
const (
	MetaTraceparent = "traceparent"
	MetaTracestate  = "tracestate"
	// MetaFlushReason is the batch message's Meta key for why it flushed.
	MetaFlushReason = "batch.flush_reason"
)

// Tracer implements [pipeline.Tracer] with an OpenTelemetry tracer.
//
// A source message is traced when it carries a sampled traceparent in its
// Meta (parent-based sampling) or, without one, with probability Ratio. An
// untraced message gets no span and no allocation at any stage.
type Tracer struct {
	tracer trace.Tracer
	ratio  float64
	prop   propagation.TextMapPropagator
	seq    atomic.Int64
	nodes  sync.Map // *pipeline.NodeInfo -> *nodeAttrs
}

var _ pipeline.Tracer = (*Tracer)(nil)

// NewTracer returns a Tracer that starts spans with tp and traces a ratio
// (0 to 1) of the source messages that arrive without a trace context. tp's
// sampler should be parent-based (as [New] sets up), so that every span
// of a traced message is recorded.
func NewTracer(tp trace.TracerProvider, ratio float64) *Tracer {
	return &Tracer{
		tracer: tp.Tracer("github.com/pipe-dsl/pipe/tracing"),
		ratio:  ratio,
		prop:   Propagator,
	}
}

// msgTrace is a traced message's root span, stored in its context.
type msgTrace struct {
	root    trace.Span
	rootCtx context.Context
	// ids are the message.seq and message.id attributes, repeated on
	// every stage span.
	ids trace.SpanStartEventOption
}

type traceKey struct{}

type nodeAttrs struct {
	name  string
	kind  trace.SpanKind
	attrs []attribute.KeyValue
	start []trace.SpanStartOption // kind and attrs, built once
}

func (t *Tracer) node(n *pipeline.NodeInfo) *nodeAttrs {
	if a, ok := t.nodes.Load(n); ok {
		return a.(*nodeAttrs)
	}
	prefix, kind := "stage ", trace.SpanKindInternal
	switch n.Role {
	case pipeline.RoleSource:
		prefix, kind = "source ", trace.SpanKindConsumer
	case pipeline.RoleSink, pipeline.RoleDeadLetter:
		kind = trace.SpanKindProducer
	}
	a := &nodeAttrs{name: prefix + n.Name, kind: kind, attrs: []attribute.KeyValue{
		AttrPipeline.String(n.Pipeline), AttrKind.String(n.Kind),
	}}
	a.start = []trace.SpanStartOption{trace.WithSpanKind(kind), trace.WithAttributes(a.attrs...)}
	v, _ := t.nodes.LoadOrStore(n, a)
	return v.(*nodeAttrs)
}

func traceOf(ctx context.Context) *msgTrace {
	mt, _ := ctx.Value(traceKey{}).(*msgTrace)
	return mt
}

// Source starts m's root span, a child of the trace context in m.Meta when
// there is one. The root span ends when m is resolved.
func (t *Tracer) Source(n *pipeline.NodeInfo, m *pipeline.Message) func(error) {
	parent := m.Context()
	bare := parent == context.Background() // the common case: skip the lookups
	if !bare && traceOf(parent) != nil {
		return nil
	}
	if hasTraceparent(m.Meta) {
		parent = t.prop.Extract(parent, metaCarrier(m.Meta))
		bare = false
	}
	if bare || !trace.SpanContextFromContext(parent).IsValid() {
		if t.ratio <= 0 || t.ratio < 1 && rand.Float64() >= t.ratio {
			return nil
		}
	}
	a := t.node(n)
	ids := trace.WithAttributes(t.msgAttrs(m)...)
	ctx, span := t.tracer.Start(parent, a.name,
		trace.WithSpanKind(a.kind), trace.WithTimestamp(m.Created),
		trace.WithAttributes(a.attrs...), ids)
	if !span.IsRecording() {
		return nil
	}
	mt := &msgTrace{root: span, ids: ids}
	mt.rootCtx = context.WithValue(ctx, traceKey{}, mt)
	m.SetContext(mt.rootCtx)
	return func(err error) {
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}

// hasTraceparent reports whether meta holds a traceparent, lower-case (as
// W3C and most producers write it) or canonical (as Go's
// propagation.HeaderCarrier writes it into NATS or Kafka headers).
func hasTraceparent(meta map[string]string) bool {
	if _, ok := meta[MetaTraceparent]; ok {
		return true
	}
	_, ok := meta["Traceparent"]
	return ok
}

// metaCarrier reads a message's Meta for the propagator, trying each key as
// given, then in its canonical header form ("Traceparent", "Baggage").
type metaCarrier map[string]string

var _ propagation.TextMapCarrier = metaCarrier(nil)

func (c metaCarrier) Get(key string) string {
	if v, ok := c[key]; ok {
		return v
	}
	return c[textproto.CanonicalMIMEHeaderKey(key)]
}

func (c metaCarrier) Set(key, value string) { c[key] = value }

func (c metaCarrier) Keys() []string { return slices.Collect(maps.Keys(c)) }

func (t *Tracer) msgAttrs(m *pipeline.Message) []attribute.KeyValue {
	a := []attribute.KeyValue{AttrSeq.Int64(t.seq.Add(1))}
	for _, k := range []string{"message_id", "id"} {
		if id, ok := m.Meta[k]; ok {
			a = append(a, AttrID.String(id))
			break
		}
	}
	return a
}

// Enter starts m's span for node n, a child of m's root span.
func (t *Tracer) Enter(n *pipeline.NodeInfo, m *pipeline.Message) {
	mt := traceOf(m.Context())
	if mt == nil {
		return
	}
	a := t.node(n)
	opts := a.start
	if mt.ids != nil {
		opts = append(opts[:len(opts):len(opts)], mt.ids)
	}
	if b := m.Batch(); b != nil {
		opts = append(opts, trace.WithAttributes(AttrBatchSize.Int(len(b))))
	}
	ctx, _ := t.tracer.Start(mt.rootCtx, a.name, opts...)
	m.SetContext(ctx)
}

// Leave ends m's span at node n with err's outcome. A failure (not a drop)
// also marks the root span, so a dead-lettered message's trace ends with
// error status and the reason. A batch leaving the stage that built it
// gets its own span, linked to every traced member's span.
func (t *Tracer) Leave(n *pipeline.NodeInfo, m *pipeline.Message, err error) {
	ctx := m.Context()
	mt := traceOf(ctx)
	if mt == nil {
		if err == nil && m.Batch() != nil {
			t.startBatch(n, m)
		}
		return
	}
	if span := trace.SpanFromContext(ctx); span != mt.root {
		end(span, err)
		m.SetContext(mt.rootCtx)
	}
	if err == nil || isDrop(err) {
		return
	}
	markFailed(mt.root, err)
	for _, x := range m.Batch() {
		if xt := traceOf(x.Context()); xt != nil {
			markFailed(xt.root, err)
		}
	}
}

func isDrop(err error) bool {
	var d *pipeline.DropError
	return errors.As(err, &d)
}

func end(span trace.Span, err error) {
	var d *pipeline.DropError
	switch {
	case err == nil:
	case errors.As(err, &d):
		span.SetAttributes(AttrDropReason.String(d.Reason))
	default:
		markFailed(span, err)
	}
	span.End()
}

func markFailed(span trace.Span, err error) {
	reason := pipeline.Reason(err)
	span.SetAttributes(AttrReason.String(reason))
	span.SetStatus(codes.Error, reason+": "+err.Error())
}

// startBatch ends the members' spans at node n and gives batch b a new
// root span linked to each of them.
func (t *Tracer) startBatch(n *pipeline.NodeInfo, b *pipeline.Message) {
	members := b.Batch()
	var links []trace.Link
	var start time.Time
	for _, x := range members {
		xctx := x.Context()
		xt := traceOf(xctx)
		if xt == nil {
			continue
		}
		span := trace.SpanFromContext(xctx)
		if span != xt.root {
			if ro, ok := span.(sdktrace.ReadOnlySpan); ok && (start.IsZero() || ro.StartTime().Before(start)) {
				start = ro.StartTime()
			}
			span.End()
			x.SetContext(xt.rootCtx)
		}
		links = append(links, trace.Link{SpanContext: span.SpanContext()})
	}
	if len(links) == 0 {
		return
	}
	a := t.node(n)
	attrs := []attribute.KeyValue{AttrBatchSize.Int(len(members))}
	if r, ok := b.Meta[MetaFlushReason]; ok {
		attrs = append(attrs, AttrFlushReason.String(r))
	}
	opts := []trace.SpanStartOption{
		trace.WithNewRoot(), trace.WithSpanKind(a.kind), trace.WithLinks(links...),
		trace.WithAttributes(a.attrs...), trace.WithAttributes(attrs...),
	}
	if !start.IsZero() {
		opts = append(opts, trace.WithTimestamp(start))
	}
	ctx, span := t.tracer.Start(context.Background(), a.name, opts...)
	if !span.IsRecording() {
		return
	}
	span.End()
	mt := &msgTrace{root: span}
	mt.rootCtx = context.WithValue(ctx, traceKey{}, mt)
	b.SetContext(mt.rootCtx)
}

// TraceID returns the hex trace ID of the span in ctx, or "".
func (t *Tracer) TraceID(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ""
	}
	return sc.TraceID().String()
}
