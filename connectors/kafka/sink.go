package kafka

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/connectors/internal/tracemeta"
	"github.com/pipe-dsl/pipe/expr"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

type sinkConfig struct {
	Brokers []string      `pipe:"brokers,required" desc:"Seed brokers, host:port." example:"[127.0.0.1:9092]"`
	Topic   string        `pipe:"topic,required" desc:"Topic to produce to." example:"orders"`
	Key     *expr.Program `pipe:"key" desc:"CEL expression for the record key (strings as is, other values as JSON); records with equal keys go to one partition, in order. Unset means no key." example:"string(msg.customer_id)"`
	Timeout time.Duration `pipe:"delivery_timeout" desc:"How long a record may wait for the brokers' acks, retries included, before Write fails." example:"30s" min:"0.001"`
}

func init() {
	component.Register(component.Sink("kafka",
		"Produces each message (each batch member) as a record and returns once every broker in sync has it (acks=all).",
		sinkConfig{Timeout: 30 * time.Second}, newSink))
}

// sink produces through a client opened on the first Write.
type sink struct {
	cfg sinkConfig

	mu sync.Mutex
	cl *kgo.Client
}

var (
	_ pipeline.Sink   = (*sink)(nil)
	_ pipeline.Closer = (*sink)(nil)
)

func newSink(c *sinkConfig, _ component.Env) (pipeline.Sink, error) {
	if len(c.Brokers) == 0 {
		return nil, fmt.Errorf("brokers: needs at least one")
	}
	return &sink{cfg: *c}, nil
}

// Write produces m, or every member of a batch, and waits for the acks. Meta
// entries become record headers, so a traceparent travels with the record;
// the kafka_* entries a kafka source adds are left out. In a batch, a
// member whose key expression fails, or whose record the brokers refuse
// for good (too large, invalid), is refused alone in a
// [pipeline.BatchError]; any other failure fails the whole batch, whose
// retry produces again the records that did get through.
func (s *sink) Write(ctx context.Context, m *pipeline.Message) error {
	members := m.Batch()
	if members == nil {
		members = []*pipeline.Message{m}
	}
	errs := make([]error, len(members))
	recs := make([]*kgo.Record, 0, len(members))
	of := make(map[*kgo.Record]int, len(members)) // results come in any order
	for i, x := range members {
		r, err := s.record(x)
		if err != nil {
			errs[i] = err
			continue
		}
		recs = append(recs, r)
		of[r] = i
	}
	if len(recs) > 0 {
		cl, err := s.client()
		if err != nil {
			return err
		}
		for _, res := range cl.ProduceSync(ctx, recs...) {
			if res.Err == nil {
				continue
			}
			err := fmt.Errorf("kafka: produce to %s: %w", s.cfg.Topic, res.Err)
			if retriable(res.Err) {
				return err
			}
			errs[of[res.Record]] = pipeline.Permanent(err)
		}
	}
	if m.Batch() == nil || !slices.ContainsFunc(errs, func(err error) bool { return err != nil }) {
		return errs[0]
	}
	return &pipeline.BatchError{Errs: errs}
}

// retriable reports whether producing the record again may succeed: a
// timeout or a broker error Kafka marks retriable, but not a record the
// brokers refuse for its own content.
func retriable(err error) bool {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Retriable
	}
	return true
}

func (s *sink) record(m *pipeline.Message) (*kgo.Record, error) {
	r := &kgo.Record{Topic: s.cfg.Topic, Value: m.Body}
	meta := tracemeta.Outgoing(m)
	for _, k := range slices.Sorted(maps.Keys(meta)) {
		if strings.HasPrefix(k, metaPrefix) {
			continue // set by a kafka source, not a header
		}
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: []byte(meta[k])})
	}
	if s.cfg.Key == nil {
		return r, nil
	}
	in := &expr.Input{Raw: m.Body, Meta: m.Meta, Decoded: m.Decoded()}
	v, err := s.cfg.Key.EvalNative(in)
	if err != nil {
		return nil, pipeline.WithReason(pipeline.ReasonExpression, fmt.Errorf("kafka: key: %w", err))
	}
	if str, ok := v.(string); ok {
		r.Key = []byte(str)
	} else if r.Key, err = expr.EncodeJSON(v); err != nil {
		return nil, pipeline.WithReason(pipeline.ReasonExpression, fmt.Errorf("kafka: key: %w", err))
	}
	return r, nil
}

func (s *sink) client() (*kgo.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cl == nil {
		cl, err := kgo.NewClient(kgo.SeedBrokers(s.cfg.Brokers...),
			kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordDeliveryTimeout(s.cfg.Timeout))
		if err != nil {
			return nil, fmt.Errorf("kafka: %w", err)
		}
		s.cl = cl
	}
	return s.cl, nil
}

// Close flushes nothing (Write waits for its records) and closes the client.
func (s *sink) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cl != nil {
		s.cl.Close()
		s.cl = nil
	}
	return nil
}
