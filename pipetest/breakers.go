package pipetest

import (
	"context"
	"log/slog"
	"strings"
	"sync"
)

// breakerLog is the message the resilience package logs on every circuit
// breaker state change, with attributes breaker ("pipeline/node"), from
// and to.
const breakerLog = "circuit breaker state change"

// transitions is a slog.Handler that records breaker state changes per
// node and discards every other record.
type transitions struct {
	prefix string // "pipeline/"

	mu   sync.Mutex
	seen map[string][]string // node -> states moved to, in order
}

func newTransitions(pipelineName string) *transitions {
	return &transitions{prefix: pipelineName + "/", seen: map[string][]string{}}
}

func (t *transitions) Enabled(context.Context, slog.Level) bool { return true }

func (t *transitions) Handle(_ context.Context, r slog.Record) error {
	if r.Message != breakerLog {
		return nil
	}
	var name, to string
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "breaker":
			name = a.Value.String()
		case "to":
			to = a.Value.String()
		}
		return true
	})
	node := strings.TrimPrefix(name, t.prefix)
	t.mu.Lock()
	t.seen[node] = append(t.seen[node], stateName(to))
	t.mu.Unlock()
	return nil
}

func (t *transitions) WithAttrs([]slog.Attr) slog.Handler { return t }
func (t *transitions) WithGroup(string) slog.Handler      { return t }

func (t *transitions) of(node string) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.seen[node]...)
}

func (t *transitions) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, s := range t.seen {
		n += len(s)
	}
	return n
}
