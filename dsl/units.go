package dsl

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"slices"
	"strings"
	"time"
)

// unitSizes are the size units ParseSize accepts: SI units are powers of
// 1000, IEC units powers of 1024.
var unitSizes = map[string]int64{
	"B":  1,
	"kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "PB": 1e15,
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40, "PiB": 1 << 50,
}

// unitSizeNames lists unitSizes' keys in the order suggestions prefer.
var unitSizeNames = []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "kB", "KB", "MB", "GB", "TB", "PB"}

// ParseSize parses a byte size such as "512", "64KiB", "1MB" or "1.5GiB".
// A bare number is bytes; kB (or KB), MB, GB, TB and PB are powers of 1000;
// KiB, MiB, GiB, TiB and PiB are powers of 1024. Units are case-sensitive
// and may be separated from the number by one space. The number may have a
// fraction as long as the size comes out a whole number of bytes. Negative
// sizes, sizes above math.MaxInt64 and unknown units are errors; the error
// quotes s, so callers must not show it for secret values.
func ParseSize(s string) (int64, error) {
	num, unit := s, ""
	if i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' && r != '-' && r != '+' }); i >= 0 {
		num, unit = s[:i], s[i:]
		if unit = strings.TrimPrefix(unit, " "); unit == "" {
			return 0, fmt.Errorf("invalid size %q: trailing space", s)
		}
	}
	switch {
	case s == "":
		return 0, errors.New("empty size")
	case strings.HasPrefix(num, "-"):
		return 0, fmt.Errorf("negative size %q", s)
	case num == "":
		return 0, fmt.Errorf("invalid size %q: it must start with a number, as in 64KiB", s)
	}
	if strings.HasPrefix(num, "+") || !unitIsDecimal(num) {
		return 0, fmt.Errorf("invalid size %q: bad number %q", s, num)
	}
	mult := int64(1)
	if unit != "" {
		m, ok := unitSizes[unit]
		if !ok {
			if sug := Suggest(unit, unitSizeNames); sug != "" {
				return 0, fmt.Errorf("unknown unit %q in size %q; did you mean %q?", unit, s, num+sug)
			}
			return 0, fmt.Errorf("unknown unit %q in size %q (use B, kB, MB, GB, KiB, MiB or GiB)", unit, s)
		}
		mult = m
	}
	// Digits beyond these cannot make an in-range whole number of bytes.
	if len(num) > 40 {
		return 0, fmt.Errorf("size %q is out of range", s)
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("invalid size %q: bad number %q", s, num)
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	if !r.IsInt() {
		return 0, fmt.Errorf("size %q is not a whole number of bytes", s)
	}
	n := r.Num()
	if !n.IsInt64() {
		return 0, fmt.Errorf("size %q is out of range (the maximum is %d bytes)", s, int64(math.MaxInt64))
	}
	return n.Int64(), nil
}

// unitIsDecimal reports whether s is digits with at most one '.', and at
// least one digit.
func unitIsDecimal(s string) bool {
	digits, dots := 0, 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '.':
			dots++
		default:
			return false
		}
	}
	return digits > 0 && dots <= 1
}

// unitDurations are the units time.ParseDuration accepts.
var unitDurations = []string{"ns", "us", "µs", "μs", "ms", "s", "m", "h"}

// unitDurationAliases maps units people write to the one Go spells.
var unitDurationAliases = map[string]string{
	"sec": "s", "secs": "s", "second": "s", "seconds": "s",
	"min": "m", "mins": "m", "minute": "m", "minutes": "m",
	"hr": "h", "hrs": "h", "hour": "h", "hours": "h",
	"msec": "ms", "msecs": "ms", "millis": "ms", "millisecond": "ms", "milliseconds": "ms",
	"usec": "us", "microsecond": "us", "microseconds": "us",
	"nsec": "ns", "nanosecond": "ns", "nanoseconds": "ns",
	"S": "s", "M": "m", "H": "h", "MS": "ms",
}

// ParseDuration parses a duration as time.ParseDuration does ("250ms",
// "1m30s", "0"), with errors that say what to write instead:
//
//	missing unit in duration "10" (did you mean "10s"?)
//	unknown unit "sec" in duration "10sec" (did you mean "10s"?)
//
// Negative durations are errors. The error quotes s, so callers must not
// show it for secret values.
func ParseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, errors.New("empty duration (write one such as 250ms or 1m30s)")
	}
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("negative duration %q", s)
	}
	if err := unitCheckDuration(s); err != nil {
		return 0, err
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		if unitDurationRE.MatchString(s) {
			return 0, fmt.Errorf("duration %q is out of range (the maximum is about 290 years)", s)
		}
		return 0, fmt.Errorf("invalid duration %q (write one such as 250ms or 1m30s)", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("negative duration %q", s)
	}
	return d, nil
}

// unitDurationRE matches well-formed durations, so a ParseDuration
// failure on one means it overflowed.
var unitDurationRE = regexp.MustCompile(`^\+?((\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h))+$`)

// unitCheckDuration reports a missing or unknown unit in s, a duration
// without its sign, with a suggested fix.
func unitCheckDuration(s string) error {
	t := strings.TrimPrefix(s, "+")
	if t == "0" {
		return nil
	}
	var fixed strings.Builder // s with every unit corrected, for the hint
	for t != "" {
		i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
		if i < 0 {
			i = len(t)
		}
		num := t[:i]
		t = t[i:]
		j := strings.IndexFunc(t, func(r rune) bool { return r >= '0' && r <= '9' || r == '.' })
		if j < 0 {
			j = len(t)
		}
		unit := t[:j]
		t = t[j:]
		if num == "" {
			return nil // let time.ParseDuration describe it
		}
		fixed.WriteString(num)
		switch {
		case unit == "":
			return fmt.Errorf("missing unit in duration %q (did you mean %q?)", s, fixed.String()+"s"+t)
		case slices.Contains(unitDurations, unit):
			fixed.WriteString(unit)
		case slices.Contains(unitDurations, strings.TrimSpace(unit)):
			return fmt.Errorf("invalid duration %q: remove the spaces (did you mean %q?)", s, strings.ReplaceAll(s, " ", ""))
		case slices.Contains([]string{"d", "day", "days"}, strings.ToLower(unit)):
			return fmt.Errorf("unknown unit %q in duration %q (there is no day unit; write hours, as in 24h)", unit, s)
		default:
			sug := unitDurationAliases[unit]
			if sug == "" {
				sug = unitDurationAliases[strings.ToLower(unit)]
			}
			if sug == "" {
				sug = Suggest(unit, unitDurations)
			}
			if sug == "" {
				return fmt.Errorf("unknown unit %q in duration %q (use ns, us, ms, s, m or h)", unit, s)
			}
			return fmt.Errorf("unknown unit %q in duration %q (did you mean %q?)", unit, s, fixed.String()+sug+t)
		}
	}
	return nil
}
