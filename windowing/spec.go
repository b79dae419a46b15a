package windowing

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Type is the shape of a stage's windows.
type Type uint8

const (
	Tumbling Type = iota // fixed size, adjacent: [k*size, (k+1)*size)
	Sliding              // fixed size every slide; an event is in size/slide windows
	Session              // per key, closes after gap without events
)

// Reason says why a window was emitted.
type Reason string

const (
	ReasonWatermark  Reason = "watermark"    // the watermark passed end + allowed_lateness
	ReasonIdle       Reason = "idle"         // the idle watermark (clock advance) passed it
	ReasonSessionEnd Reason = "session_end"  // ends_when matched a member
	ReasonEndOfInput Reason = "end_of_input" // the input ended
	ReasonEvicted    Reason = "evicted"      // max_open was reached and it was the oldest
	ReasonShutdown   Reason = "shutdown"     // soft stop without durable state: a partial result
)

// Reasons lists every reason, in the order summaries print them.
var Reasons = []Reason{ReasonWatermark, ReasonIdle, ReasonSessionEnd, ReasonEndOfInput, ReasonEvicted, ReasonShutdown}

// NoWatermark is the watermark before the first event (-inf).
const NoWatermark = math.MinInt64

// MaxTime bounds event times (±2^62 ns, 1824 to 2116) so that window
// bounds plus durations never overflow.
const MaxTime = int64(1) << 62

// MaxDuration bounds every duration of a Spec (2^60 ns, about 36 years), so
// that a time plus the durations of a spec never overflows.
const MaxDuration = time.Duration(1) << 60

// MaxWindowsPerEvent bounds size/slide of a sliding window.
const MaxWindowsPerEvent = 1000

// Spec is an engine's configuration. It is not part of [State]: a restored
// state must be given the same Spec.
type Spec struct {
	Type            Type
	Size, Slide     time.Duration // tumbling and sliding
	Gap             time.Duration // session
	MaxOutOfOrder   time.Duration // watermark lag
	AllowedLateness time.Duration
	// MaxOpen bounds the open (key, window) pairs; 0 means unbounded.
	MaxOpen int
	Aggs    []Agg
}

// Validate reports the first problem of s.
func (s *Spec) Validate() error {
	switch s.Type {
	case Tumbling:
		if s.Size <= 0 {
			return errors.New("tumbling windows need size > 0")
		}
	case Sliding:
		if s.Size <= 0 || s.Slide <= 0 {
			return errors.New("sliding windows need size > 0 and slide > 0")
		}
		if s.Slide > s.Size {
			return fmt.Errorf("slide %v is longer than size %v: events between windows would belong to none", s.Slide, s.Size)
		}
		if n := (s.Size + s.Slide - 1) / s.Slide; n > MaxWindowsPerEvent {
			return fmt.Errorf("size/slide = %d windows per event, over the limit of %d", n, MaxWindowsPerEvent)
		}
	case Session:
		if s.Gap <= 0 {
			return errors.New("session windows need gap > 0")
		}
	default:
		return fmt.Errorf("unknown window type %d", s.Type)
	}
	if s.MaxOutOfOrder < 0 || s.AllowedLateness < 0 || s.MaxOpen < 0 {
		return errors.New("max_out_of_order, allowed_lateness and max_open must not be negative")
	}
	for _, d := range []time.Duration{s.Size, s.Slide, s.Gap, s.MaxOutOfOrder, s.AllowedLateness} {
		if d > MaxDuration {
			return fmt.Errorf("%v is longer than the limit of %v (36 years)", d, MaxDuration)
		}
	}
	seen := map[string]bool{}
	for _, a := range s.Aggs {
		if err := a.validate(); err != nil {
			return err
		}
		if seen[a.Name] {
			return fmt.Errorf("aggregate %q declared twice", a.Name)
		}
		seen[a.Name] = true
	}
	return nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func satSub(a, b int64) int64 {
	if b > 0 && a < math.MinInt64+b {
		return math.MinInt64 + 1
	}
	return a - b
}

func satAdd(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
