package resilience

import (
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

func TestAWrappedSinkReportsItsBreakersStateAndTransitions(t *testing.T) {
	clock := pipelinetest.NewFakeClock(epoch)
	b := newBreaker(t, BreakerConfig{FailureThreshold: 1, RecoveryTimeout: time.Second}, clock)
	s := Sink(&pipelinetest.Sink{}, b).(pipeline.Reporter)
	value := func(name, label string) float64 {
		t.Helper()
		for _, f := range s.Report() {
			if f.Name == name && f.LabelValue == label {
				return f.Value
			}
		}
		t.Fatalf("Report() has no %s{%s}", name, label)
		return 0
	}
	if got := value("breaker_state", ""); got != float64(StateClosed) {
		t.Fatalf("breaker_state = %v, want %v (closed)", got, float64(StateClosed))
	}
	report(t, b, errDown)
	if got := value("breaker_state", ""); got != float64(StateOpen) {
		t.Fatalf("after a failure breaker_state = %v, want %v (open)", got, float64(StateOpen))
	}
	if got := value("breaker_transitions", "open"); got != 1 {
		t.Fatalf("breaker_transitions{to=open} = %v, want 1", got)
	}
	if r := Sink(&pipelinetest.Sink{}).(pipeline.Reporter).Report(); r != nil {
		t.Fatalf("a sink with no reporting policy reports %v, want nil", r)
	}
}
