package connectors

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/internal/httpclient"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

func newTestChaos(t *testing.T, c chaosConfig, clock pipeline.Clock) *chaos {
	t.Helper()
	if c.Status == 0 {
		c.Status = 503
	}
	s, err := newChaos(&c, component.Env{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.(*chaos).Close(context.Background()) })
	return s.(*chaos)
}

// outcomes writes n messages and returns which failed.
func outcomes(t *testing.T, s *chaos, n int) []bool {
	t.Helper()
	out := make([]bool, n)
	for i := range out {
		out[i] = s.Write(context.Background(), pipeline.NewMessage([]byte(`{}`), nil)) != nil
	}
	return out
}

func TestChaosFailsExactlyTheFirstN(t *testing.T) {
	s := newTestChaos(t, chaosConfig{FailFirst: 3, Status: 429}, pipeline.SystemClock)
	got := outcomes(t, s, 6)
	want := []bool{true, true, true, false, false, false}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("failures = %v, want %v", got, want)
		}
	}
	err := newTestChaos(t, chaosConfig{FailFirst: 1, Status: 429}, pipeline.SystemClock).
		Write(context.Background(), pipeline.NewMessage(nil, nil))
	var se *httpclient.StatusError
	if !errors.As(err, &se) || se.Code != 429 || !se.Retryable() {
		t.Errorf("Write = %v, want a retryable 429 StatusError", err)
	}
}

func TestChaosIsDeterministicForASeed(t *testing.T) {
	const n = 1000
	a := outcomes(t, newTestChaos(t, chaosConfig{FailRate: 0.2, Seed: 7}, pipeline.SystemClock), n)
	b := outcomes(t, newTestChaos(t, chaosConfig{FailRate: 0.2, Seed: 7}, pipeline.SystemClock), n)
	c := outcomes(t, newTestChaos(t, chaosConfig{FailRate: 0.2, Seed: 8}, pipeline.SystemClock), n)
	failed, differ := 0, false
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("write %d: seed 7 failed %v then %v, want the same", i+1, a[i], b[i])
		}
		if a[i] {
			failed++
		}
		differ = differ || a[i] != c[i]
	}
	if !differ {
		t.Error("seeds 7 and 8 failed the same writes")
	}
	if failed < 150 || failed > 250 {
		t.Errorf("fail_rate 0.2 failed %d of %d writes, want about 200", failed, n)
	}
}

func TestChaosLatencyUsesThePipelineClock(t *testing.T) {
	clock := pipelinetest.NewFakeClock(time.Unix(0, 0))
	s := newTestChaos(t, chaosConfig{Latency: 50 * time.Millisecond}, clock)
	done := make(chan error)
	go func() { done <- s.Write(context.Background(), pipeline.NewMessage(nil, nil)) }()
	clock.WaitTimers(1)
	select {
	case err := <-done:
		t.Fatalf("Write returned %v before the latency passed", err)
	default:
	}
	clock.Advance(50 * time.Millisecond)
	if err := <-done; err != nil {
		t.Errorf("Write = %v, want nil", err)
	}
}

func TestChaosAppendsAcceptedMessagesToPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "accepted.ndjson")
	s := newTestChaos(t, chaosConfig{FailFirst: 1, Path: path}, pipeline.SystemClock)
	for _, b := range []string{`{"id":1}`, `{"id":2}`} {
		s.Write(context.Background(), pipeline.NewMessage([]byte(b), nil))
	}
	if err := s.Write(context.Background(), batchOf(`{"id":3}`, `{"id":4}`)); err != nil {
		t.Fatal(err)
	}
	s.Close(context.Background())
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "{\"id\":2}\n{\"id\":3}\n{\"id\":4}\n"; string(got) != want {
		t.Errorf("file = %q, want %q", got, want)
	}
}
