package resilience

import (
	"context"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/pipeline"
)

// BenchmarkComposeSuccess is the cost the default composition adds to a
// call that succeeds at once, on the system clock.
func BenchmarkComposeSuccess(b *testing.B) {
	r, _ := NewRetry(RetryConfig{MaxAttempts: 3}, nil, quiet)
	br, _ := NewBreaker(BreakerConfig{FailureThreshold: 5, FailureRate: 0.5}, nil, quiet)
	for _, tc := range []struct {
		name     string
		policies []Policy
	}{
		{"none", nil},
		{"retry+breaker", []Policy{r, br}},
		{"retry+breaker+timeout", []Policy{r, br, Timeout{D: time.Second}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			call := Compose(func(_ context.Context, m *pipeline.Message) (*pipeline.Message, error) { return m, nil }, tc.policies...)
			m := pipeline.NewMessage([]byte(`{}`), nil)
			ctx := context.Background()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := call(ctx, m); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
