package pipeline

import (
	"encoding/json"
	"time"
	"unicode/utf8"
)

// DeadLetter is the JSON envelope the dead-letter sink receives for every
// failed message. A failed batch reaches it as a batch of envelopes, one per
// member.
type DeadLetter struct {
	Pipeline string `json:"pipeline"`
	// Stage is the name of the node where the message failed, Kind its kind.
	Stage string `json:"stage"`
	Kind  string `json:"kind"`
	// Reason is machine-readable: expression_error, invalid_payload,
	// sink_error, retries_exhausted, circuit_open, rate_limited, timeout, error.
	Reason       string    `json:"reason"`
	Error        string    `json:"error"`
	Attempts     int       `json:"attempts"`
	FirstFailure time.Time `json:"first_failure"`
	LastFailure  time.Time `json:"last_failure"`
	// Payload is the body when it is valid JSON; otherwise PayloadText (valid
	// UTF-8) or PayloadBase64 holds it.
	Payload       json.RawMessage   `json:"payload,omitempty"`
	PayloadText   string            `json:"payload_text,omitempty"`
	PayloadBase64 []byte            `json:"payload_base64,omitempty"`
	Meta          map[string]string `json:"meta,omitempty"`
	// TraceID is the hex ID of the message's trace when a tracer is set.
	TraceID string `json:"trace_id,omitempty"`
}

// toDeadLetter turns m, in place, into its dead-letter envelope.
func toDeadLetter(m *Message, p *Pipeline, n *node, err error) {
	env := func(x *Message, err error) []byte {
		reason := Reason(err)
		if reason == ReasonError && n.role == RoleSink {
			reason = ReasonSinkError
		}
		p.dlq.reasons.add(reason)
		d := DeadLetter{
			Pipeline:     p.Name,
			Stage:        n.name,
			Kind:         n.kind,
			Reason:       reason,
			Error:        err.Error(),
			Attempts:     m.failures.attempts,
			FirstFailure: m.failures.first.UTC(),
			LastFailure:  m.failures.last.UTC(),
			Meta:         x.Meta,
			TraceID:      p.traceID(x),
		}
		switch {
		case json.Valid(x.Body):
			d.Payload = x.Body
		case utf8.Valid(x.Body):
			d.PayloadText = string(x.Body)
		default:
			d.PayloadBase64 = x.Body
		}
		b, merr := json.Marshal(d)
		if merr != nil {
			b = []byte(`{"reason":"error","error":"dead-letter envelope: ` + merr.Error() + `"}`)
		}
		return b
	}
	if m.batch == nil {
		m.SetBody(env(m, err))
		return
	}
	// Members may be shared with a broadcast copy: build new envelopes.
	envs := make([]*Message, len(m.batch))
	for i, x := range m.batch {
		xerr := err
		if m.refused != nil {
			xerr = m.refused[i]
		}
		envs[i] = &Message{Body: env(x, xerr), Meta: x.Meta, Created: x.Created, tx: &tx{}}
	}
	m.batch, m.refused = envs, nil
}
