package expr

import (
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"
)

// hostileBody is a message with a 20,000-character string s and a list
// items of n ones.
func hostileBody(n int) []byte {
	return []byte(`{"s":"` + strings.Repeat("a", 20_000) + `","items":[` + strings.Repeat("1,", n-1) + `1]}`)
}

// allocated returns the bytes f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// evalHostile compiles src with opts, evaluates it as EvalJSON would on
// body, and checks that it fails with want having allocated at most
// maxAlloc bytes. The time limit is off unless opts set it, so that a slow
// machine (or -race) cannot change which limit stops the evaluation.
func evalHostile(t *testing.T, src string, body []byte, want error, maxAlloc uint64, opts ...Option) {
	t.Helper()
	p, err := Compile(src, append([]Option{WithTimeLimit(0)}, opts...)...)
	if err != nil {
		t.Fatalf("Compile(%#q) = %v", src, err)
	}
	var evalErr error
	n := allocated(func() { _, _, evalErr = p.EvalJSON(&Input{Raw: body}) })
	if !errors.Is(evalErr, want) {
		t.Errorf("EvalJSON(%#q) error = %v, want %v", src, evalErr, want)
	}
	if n > maxAlloc {
		t.Errorf("EvalJSON(%#q) allocated %d bytes, want at most %d", src, n, maxAlloc)
	}
}

// A concatenation is charged by the size of its operands, as cel-go
// charges add_string: pipe's + over dyn operands used to cost 1, so this
// map built 5,000 strings of 40,000 bytes (200 MB) and succeeded.
func TestConcatenationIsChargedBySize(t *testing.T) {
	body := hostileBody(5_000)
	evalHostile(t, `msg.items.map(a, msg.s + msg.s)`, body, ErrCostLimit, 32<<20)
	evalHostile(t, `msg.items.map(a, [msg.s] + [msg.s]).size()`, body, nil, 32<<20) // lists: lazy, O(1)
}

// replace and join check the size of their result before they build it.
func TestStringBuildersAreRefusedBeforeAllocating(t *testing.T) {
	body := hostileBody(2_000)
	evalHostile(t, `msg.s.replace("", msg.s).size()`, body, ErrValueTooLarge, 8<<20)
	evalHostile(t, `msg.s.replace("a", msg.s, 1000).size()`, body, ErrValueTooLarge, 8<<20)
	evalHostile(t, `msg.items.map(x, msg.s).join("").size()`, body, ErrValueTooLarge, 8<<20)
	evalHostile(t, `msg.items.map(x, msg.s).join(",").size()`, body, ErrValueTooLarge, 8<<20)
	evalHostile(t, `"%s".format([msg.items.map(x, msg.s)]).size()`, body, ErrValueTooLarge, 8<<20)
	evalHostile(t, `"%s: %s".format(["x", {"k": msg.items.map(x, msg.s)}]).size()`, body, ErrValueTooLarge, 8<<20)
	evalHostile(t, `"a-b".replace("-", msg.s.substring(0, 3)) + ["x", "y"].join("+") +
		"%s %d %.2f %x".format(["s", 1, 2.5, b"hi"])`, body, nil, 1<<20)
}

// The JSON encoding of a result is bounded too: a list of references to
// one list costs little to build and would encode to gigabytes.
func TestResultEncodingIsBounded(t *testing.T) {
	evalHostile(t, `msg.items.map(x, msg.items)`, hostileBody(4_000), ErrValueTooLarge, 64<<20)
}

// Nested comprehensions over a 20,000-item list are stopped by the time
// limit (cel-go's cost tracker is quadratic in the iterations of one
// comprehension, so the cost limit alone takes seconds to bite). The cost
// limit is lifted here so that only the time limit can stop it.
func TestNestedComprehensionsStopAtTheTimeLimit(t *testing.T) {
	body := hostileBody(20_000)
	for _, src := range []string{
		`msg.items.map(a, msg.items.map(b, a + b))`,
		`msg.items.all(a, msg.items.all(b, a == b))`,
	} {
		evalHostile(t, src, body, ErrTimeLimit, 64<<20, WithCostLimit(1<<62), WithTimeLimit(20*time.Millisecond))
	}
}

// The time limit applies only to programs whose cost is tracked; a
// constant expression is not timed.
func TestUntrackedProgramsAreNotTimed(t *testing.T) {
	p, err := Compile(`[1, 2, 3].map(x, x * 2)`)
	if err != nil {
		t.Fatal(err)
	}
	if p.timeLimit != 0 {
		t.Errorf("timeLimit = %v, want 0 for an expression of bounded cost", p.timeLimit)
	}
	q, err := Compile(`msg.items.map(x, x * 2)`)
	if err != nil {
		t.Fatal(err)
	}
	if q.timeLimit != DefaultTimeLimit {
		t.Errorf("timeLimit = %v, want %v for a comprehension over msg", q.timeLimit, DefaultTimeLimit)
	}
}

// The cost limit and time limit of the default configuration stop the
// hostile expressions of issue 20 in well under a second each.
//
//	go test -run '^$' -bench HostileDefaultLimits -benchtime 3x ./expr/
func BenchmarkHostileDefaultLimits(b *testing.B) {
	body := hostileBody(20_000)
	for _, src := range []string{
		`msg.items.map(a, msg.s + msg.s)`,
		`msg.items.map(a, msg.items.map(b, b))`,
		`msg.items.all(a, msg.items.all(b, a == b))`,
		`msg.s.replace("", msg.s)`,
		`msg.items.map(x, msg.items)`,
	} {
		p, err := Compile(src)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(src, func(b *testing.B) {
			for b.Loop() {
				if _, _, err := p.EvalJSON(&Input{Raw: body}); err == nil {
					b.Fatal("no error")
				}
			}
			if per := b.Elapsed() / time.Duration(b.N); per > time.Second {
				b.Fatalf("stopping took %v per evaluation, want under 1s", per)
			}
		})
	}
}
