package backoff

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func fixed(r float64) func() float64 { return func() float64 { return r } }

func TestDelay(t *testing.T) {
	exp := Policy{BaseDelay: 100 * time.Millisecond, MaxDelay: 10 * time.Second, Multiplier: 2}
	full, equal := exp, exp
	full.Jitter, equal.Jitter = FullJitter, EqualJitter
	for _, tc := range []struct {
		name string
		p    Policy
		n    int
		r    float64
		want time.Duration
	}{
		{"first failure waits BaseDelay", exp, 1, 0, 100 * time.Millisecond},
		{"n below 1 is treated as 1", exp, 0, 0, 100 * time.Millisecond},
		{"delay doubles", exp, 2, 0, 200 * time.Millisecond},
		{"delay doubles again", exp, 7, 0, 6400 * time.Millisecond},
		{"delay is capped", exp, 8, 0, 10 * time.Second},
		{"n=1000 saturates at MaxDelay", exp, 1000, 0, 10 * time.Second},
		{"huge n saturates at MaxDelay", exp, math.MaxInt, 0, 10 * time.Second},
		{"zero Multiplier means 2", Policy{BaseDelay: time.Second}, 3, 0, 4 * time.Second},
		{"Multiplier 1 is constant", Policy{BaseDelay: time.Second, Multiplier: 1}, 50, 0, time.Second},
		{"fractional Multiplier", Policy{BaseDelay: time.Second, Multiplier: 1.5}, 3, 0, 2250 * time.Millisecond},
		{"no MaxDelay saturates at the largest Duration", Policy{BaseDelay: time.Second}, 1000, 0, math.MaxInt64},
		{"zero BaseDelay never waits", Policy{Multiplier: 10}, 1000, 0, 0},
		{"zero value never waits", Policy{}, 5, 0, 0},
		{"full jitter r=0", full, 2, 0, 0},
		{"full jitter r=0.5", full, 2, 0.5, 100 * time.Millisecond},
		{"full jitter r=0.999", full, 2, 0.999, 199800 * time.Microsecond},
		{"full jitter applies after the cap", full, 1000, 0.25, 2500 * time.Millisecond},
		{"equal jitter r=0", equal, 2, 0, 100 * time.Millisecond},
		{"equal jitter r=0.5", equal, 2, 0.5, 150 * time.Millisecond},
		{"equal jitter applies after the cap", equal, 1000, 0.5, 7500 * time.Millisecond},
		{"rnd below 0 is treated as 0", full, 2, -3, 0},
		{"rnd of 1 or more stays below d", full, 2, 7, 200*time.Millisecond - 1},
		{"full jitter on the largest Duration does not overflow", Policy{BaseDelay: time.Second, Jitter: FullJitter}, 1000, math.Nextafter(1, 0), math.MaxInt64 - 1023},
	} {
		if got := tc.p.Delay(tc.n, fixed(tc.r)); got != tc.want {
			t.Errorf("%s: %+v.Delay(%d, %v) = %v, want %v", tc.name, tc.p, tc.n, tc.r, got, tc.want)
		}
	}
}

func TestNext(t *testing.T) {
	p := Policy{BaseDelay: time.Second, MaxDelay: 8 * time.Second, MaxAttempts: 5, MaxElapsed: 20 * time.Second}
	for _, tc := range []struct {
		name      string
		attempts  int
		elapsed   time.Duration
		wantDelay time.Duration
		wantOK    bool
	}{
		{"retries after the first failure", 1, 0, time.Second, true},
		{"retries with a growing delay", 3, 3 * time.Second, 4 * time.Second, true},
		{"retries when the next start is exactly MaxElapsed", 4, 12 * time.Second, 8 * time.Second, true},
		{"stops when the next start would pass MaxElapsed", 4, 12*time.Second + 1, 0, false},
		{"stops when elapsed already passed MaxElapsed", 1, time.Minute, 0, false},
		{"stops at MaxAttempts", 5, 0, 0, false},
		{"stops beyond MaxAttempts", 6, 0, 0, false},
	} {
		d, ok := p.Next(tc.attempts, tc.elapsed, nil)
		if d != tc.wantDelay || ok != tc.wantOK {
			t.Errorf("%s: Next(%d, %v) = %v, %v, want %v, %v", tc.name, tc.attempts, tc.elapsed, d, ok, tc.wantDelay, tc.wantOK)
		}
	}
}

func TestNextWithoutLimitsRetriesForever(t *testing.T) {
	p := Policy{BaseDelay: time.Second, MaxDelay: time.Minute}
	if d, ok := p.Next(1_000_000, 1000*time.Hour, nil); d != time.Minute || !ok {
		t.Errorf("Next(1e6, 1000h) = %v, %v, want 1m0s, true", d, ok)
	}
}

func TestNextChecksMaxElapsedAgainstTheJitteredDelay(t *testing.T) {
	p := Policy{BaseDelay: 10 * time.Second, Jitter: FullJitter, MaxElapsed: 15 * time.Second}
	if d, ok := p.Next(1, 10*time.Second, fixed(0.4)); d != 4*time.Second || !ok {
		t.Errorf("Next(1, 10s) with r=0.4 = %v, %v, want 4s, true", d, ok)
	}
	if d, ok := p.Next(1, 10*time.Second, fixed(0.6)); d != 0 || ok {
		t.Errorf("Next(1, 10s) with r=0.6 = %v, %v, want 0s, false", d, ok)
	}
}

// TestDelayStaysInBounds checks random policies: delays never leave
// [0, cap], jittered delays stay within their band of the unjittered one,
// and unjittered delays never decrease as n grows.
func TestDelayStaysInBounds(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		p := Policy{
			BaseDelay:  time.Duration(r.Int64N(int64(time.Minute))),
			Multiplier: 1 + 9*r.Float64(),
		}
		if r.IntN(4) > 0 {
			p.MaxDelay = p.BaseDelay + time.Duration(r.Int64N(int64(time.Hour)))
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("%+v.Validate() = %v", p, err)
		}
		limit := p.MaxDelay
		if limit == 0 {
			limit = math.MaxInt64
		}
		full, equal := p, p
		full.Jitter, equal.Jitter = FullJitter, EqualJitter
		prev := time.Duration(0)
		for _, n := range []int{1, 2, 3, 5, 10, 30, 64, 100, 1000, 1 << 20, math.MaxInt} {
			d := p.Delay(n, nil)
			if d < prev || d > limit {
				t.Fatalf("%+v.Delay(%d) = %v, want in [%v, %v]", p, n, d, prev, limit)
			}
			prev = d
			if f := full.Delay(n, r.Float64); f < 0 || f > d || (f == d && d > 0) {
				t.Fatalf("%+v.Delay(%d) = %v, want in [0, %v)", full, n, f, d)
			}
			if e := equal.Delay(n, r.Float64); e < d/2 || e > d || (e == d && d > 0) {
				t.Fatalf("%+v.Delay(%d) = %v, want in [%v, %v)", equal, n, e, d/2, d)
			}
		}
		if d := p.Delay(1000, nil); d != limit && p.BaseDelay > 0 && p.Multiplier >= 1.1 {
			t.Fatalf("%+v.Delay(1000) = %v, want the cap %v", p, d, limit)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		p    Policy
		want []string // substrings of the error; none means valid
	}{
		{Policy{}, nil},
		{Policy{BaseDelay: time.Second, MaxDelay: time.Minute, Multiplier: 1.5, Jitter: EqualJitter, MaxAttempts: 3, MaxElapsed: time.Hour}, nil},
		{Policy{BaseDelay: time.Second, MaxDelay: time.Second, Multiplier: 1}, nil},
		{Policy{BaseDelay: -1}, []string{"BaseDelay -1ns is negative"}},
		{Policy{BaseDelay: time.Minute, MaxDelay: time.Second}, []string{"MaxDelay 1s is less than BaseDelay 1m0s"}},
		{Policy{Multiplier: 0.5}, []string{"Multiplier 0.5"}},
		{Policy{Multiplier: math.NaN()}, []string{"Multiplier NaN"}},
		{Policy{Multiplier: math.Inf(1)}, []string{"Multiplier +Inf"}},
		{Policy{Jitter: 7}, []string{"unknown Jitter(7)"}},
		{
			Policy{MaxDelay: -1, MaxAttempts: -1, MaxElapsed: -1},
			[]string{"MaxDelay -1ns is negative", "MaxAttempts -1 is negative", "MaxElapsed -1ns is negative"},
		},
	} {
		err := tc.p.Validate()
		if len(tc.want) == 0 {
			if err != nil {
				t.Errorf("%+v.Validate() = %v, want nil", tc.p, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%+v.Validate() = nil, want errors %q", tc.p, tc.want)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v.Validate() = %q, want it to contain %q", tc.p, err, w)
			}
		}
	}
}

func TestJitterStringAndParseRoundTrip(t *testing.T) {
	for _, j := range []Jitter{NoJitter, FullJitter, EqualJitter} {
		got, err := ParseJitter(j.String())
		if got != j || err != nil {
			t.Errorf("ParseJitter(%q) = %v, %v, want %v, nil", j.String(), got, err, j)
		}
	}
	if got := Jitter(9).String(); got != "Jitter(9)" {
		t.Errorf("Jitter(9).String() = %q, want %q", got, "Jitter(9)")
	}
	for _, s := range []string{"", "Full", "decorrelated"} {
		if _, err := ParseJitter(s); err == nil {
			t.Errorf("ParseJitter(%q) = nil error, want an error", s)
		}
	}
}

func BenchmarkDelay(b *testing.B) {
	p := Policy{BaseDelay: 100 * time.Millisecond, MaxDelay: time.Minute, Multiplier: 1.6, Jitter: FullJitter}
	n := 0
	for b.Loop() {
		n++
		p.Delay(n&31+1, rand.Float64)
	}
}

func ExamplePolicy_Next() {
	p := Policy{BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second, MaxAttempts: 6}
	elapsed := time.Duration(0)
	for attempts := 1; ; attempts++ {
		delay, ok := p.Next(attempts, elapsed, nil)
		if !ok {
			fmt.Println("give up after", attempts, "attempts")
			break
		}
		fmt.Println("attempt", attempts, "failed; retry in", delay)
		elapsed += delay
	}
	// Output:
	// attempt 1 failed; retry in 100ms
	// attempt 2 failed; retry in 200ms
	// attempt 3 failed; retry in 400ms
	// attempt 4 failed; retry in 800ms
	// attempt 5 failed; retry in 1s
	// give up after 6 attempts
}
