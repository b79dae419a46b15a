package pgstate

import (
	"time"

	"github.com/pipe-dsl/pipe/state"
)

// SetSweepClock makes s's claims sweep every `every` by now (tests).
func SetSweepClock(s state.Shared, every time.Duration, now func() time.Time) {
	sh := s.(*Shared)
	sh.every, sh.now = every, now
}
