package store

import (
	"context"
	"sync/atomic"

	"github.com/pipe-dsl/pipe/internal/lookup"
)

// Static answers from a fixed map of results by key text, for tests and
// `pipe test` stubs. It counts its round trips.
type Static struct {
	results map[string]any
	trips   atomic.Int64
}

var _ lookup.Store = (*Static)(nil)

// NewStatic returns a store holding results; keys absent are missing.
func NewStatic(results map[string]any) *Static { return &Static{results: results} }

func (s *Static) Fetch(_ context.Context, reqs []lookup.Request) (map[string]any, error) {
	s.trips.Add(1)
	out := make(map[string]any, len(reqs))
	for _, r := range reqs {
		if v, ok := s.results[r.Key]; ok {
			out[r.Key] = v
		}
	}
	return out, nil
}

// RoundTrips returns how many Fetch calls it answered.
func (s *Static) RoundTrips() int64 { return s.trips.Load() }

func (s *Static) Close() error { return nil }
