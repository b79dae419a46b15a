package connectors

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/expr"
	"github.com/pipe-dsl/pipe/pipeline"
)

// templateSeqs are the sequence numbers the template tests evaluate: the
// first ones, around sign and digit changes, and the extremes.
var templateSeqs = func() []int64 {
	s := []int64{0, -1, -10, 99, 100, 999999, 1000000, math.MaxInt64, math.MinInt64}
	for i := int64(1); i <= 200; i++ {
		s = append(s, i)
	}
	return s
}()

func TestGenerateTemplateWritesWhatTheExpressionEncodesTo(t *testing.T) {
	for _, src := range []string{
		`{"id": seq, "level": seq % 10 == 0 ? "error" : "info", "amount": double(seq) * 1.5}`,
		`{"b": 1, "a": seq, "c": "x", "nested": {"z": seq * 2, "y": [seq, "q"], "x": null}, "f": true}`,
		`{"s": "n" + string(seq), "neg": -seq, "u": uint(seq % 7 + 7), "half": double(seq) / 2.0}`,
		`{"tiny": double(seq) / 1.0e9, "huge": double(seq) * 1.0e20, "zero": double(seq) * 0.0 * -1.0}`,
		`{"esc": seq % 2 == 0 ? "quo\"te\\" : "tab\t\u00e9\u2028", "<&>": "<&>", "a\"b": seq}`,
		`{"bytes": b"\x00\xff", "list": [1, 2.5, "x"], "empty": {}, "l2": [[seq]]}`,
		`{"ok": seq > 5 && seq < 100 || !(seq != 3)}`,
		`{}`,
	} {
		t.Run(src, func(t *testing.T) {
			prog, err := expr.Compile(src)
			if err != nil {
				t.Fatal(err)
			}
			tmpl := newBodyTemplate(prog)
			if tmpl == nil {
				t.Fatal("no template for an object literal of operators on seq")
			}
			for _, seq := range templateSeqs {
				want, wantErr := prog.EvalBody(&expr.Input{Seq: seq})
				got, err := tmpl.write(seq, 0)
				if !bytes.Equal(got, want) || (err == nil) != (wantErr == nil) {
					t.Fatalf("seq %d: template wrote %s (%v), the expression %s (%v)", seq, got, err, want, wantErr)
				}
			}
		})
	}
}

func TestGenerateTemplateFailsAsTheExpressionDoes(t *testing.T) {
	// Overflow at MaxInt64 and division by zero at 0: the error is the
	// whole expression's, with its position.
	prog, err := expr.Compile(`{"a": 1, "next": seq + 1, "inv": 10 / seq}`)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := newBodyTemplate(prog)
	if tmpl == nil {
		t.Fatal("no template")
	}
	for _, seq := range []int64{0, math.MaxInt64} {
		_, want := prog.EvalBody(&expr.Input{Seq: seq})
		_, got := tmpl.write(seq, 0)
		if want == nil || got == nil || got.Error() != want.Error() {
			t.Fatalf("seq %d: template error %v, expression error %v", seq, got, want)
		}
	}
}

func TestGenerateTemplateKeepsOtherShapesWhole(t *testing.T) {
	for _, src := range []string{
		`"plain " + string(seq)`,                   // not an object
		`[seq]`,                                    // not an object
		`{"a": [1, 2].map(x, x * seq)}`,            // a comprehension: its cost is tracked
		`{"a": string(seq).size()}`,                // a member call
		`{"a": lists.range(seq % 5)}`,              // a function outside the list
		`{"a": seq, "a": 2}`,                       // duplicate keys fail at evaluation
		`{1: seq}`,                                 // not a string key
		`{?"a": optional.of(seq)}`,                 // optional entry
		`{"t": timestamp("2026-01-01T00:00:00Z")}`, // a function outside the list
	} {
		prog, err := expr.Compile(src)
		if err != nil {
			continue // not every shape compiles; those that do must stay whole
		}
		if newBodyTemplate(prog) != nil {
			t.Errorf("%s: templated, want the whole expression per message", src)
		}
	}
}

// sliceOutlet keeps every body sent.
type sliceOutlet struct {
	timedOutlet
	bodies [][]byte
}

func (o *sliceOutlet) Send(_ context.Context, m *pipeline.Message) error {
	o.bodies = append(o.bodies, m.Body)
	m.Ack()
	return nil
}

func TestGenerateSendsTheTemplatedBodies(t *testing.T) {
	src := `{"id": seq, "level": seq % 10 == 0 ? "error" : "info", "amount": double(seq) * 1.5}`
	prog, err := expr.Compile(src)
	if err != nil {
		t.Fatal(err)
	}
	g, err := newGenerate(&generateConfig{Count: 1000, Message: prog}, component.Env{Clock: pipeline.SystemClock})
	if err != nil {
		t.Fatal(err)
	}
	if g.(*generate).tmpl == nil {
		t.Fatal("generate does not use the template")
	}
	out := &sliceOutlet{}
	if err := g.Read(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	if len(out.bodies) != 1000 {
		t.Fatalf("sent %d messages, want 1000", len(out.bodies))
	}
	for i, b := range out.bodies {
		want, _ := prog.EvalBody(&expr.Input{Seq: int64(i + 1)})
		if !bytes.Equal(b, want) {
			t.Fatalf("message %d: %s, want %s", i+1, b, want)
		}
	}
	// The same failure as without the template stops Read.
	bad, err := expr.Compile(`{"inv": 10 / (seq - 3)}`)
	if err != nil {
		t.Fatal(err)
	}
	g, _ = newGenerate(&generateConfig{Count: 10, Message: bad}, component.Env{Clock: pipeline.SystemClock})
	out = &sliceOutlet{}
	var ee *expr.Error
	if err := g.Read(context.Background(), out); !errors.As(err, &ee) || len(out.bodies) != 2 {
		t.Fatalf("Read: %v after %d messages, want an expression error after 2", err, len(out.bodies))
	}
}

// randExpr builds a random expression of kind k over seq, within and around
// the subset compileScalar takes over, depth levels deep at most.
func randExpr(r *rand.Rand, k scalarKind, depth int) string {
	pick := func(s ...string) string { return s[r.IntN(len(s))] }
	if depth == 0 || r.IntN(4) == 0 {
		switch k {
		case kindInt:
			return pick("seq", "seq", "0", "1", "-1", "2", "7", "10", "100", "9223372036854775807", "-9223372036854775807")
		case kindDouble:
			return pick("0.0", "1.5", "-2.25", "1e300", "3.0", "1e-7", "0.1")
		case kindString:
			return pick(`"a"`, `"error"`, `"x\"y"`, `"é"`, `""`)
		default:
			return pick("true", "false")
		}
	}
	d := depth - 1
	cond := func() string {
		return "(" + randExpr(r, kindBool, d) + " ? " + randExpr(r, k, d) + " : " + randExpr(r, k, d) + ")"
	}
	switch k {
	case kindInt:
		switch r.IntN(5) {
		case 0:
			return "(" + randExpr(r, kindInt, d) + pick(" + ", " - ", " * ", " / ", " % ") + randExpr(r, kindInt, d) + ")"
		case 1:
			return "-(" + randExpr(r, kindInt, d) + ")"
		case 2:
			return "int(" + randExpr(r, kindDouble, d) + ")"
		case 3:
			return cond()
		default:
			return "(" + randExpr(r, kindInt, d) + pick(" * ", " + ") + randExpr(r, kindInt, d) + ")"
		}
	case kindDouble:
		switch r.IntN(4) {
		case 0:
			return "(" + randExpr(r, kindDouble, d) + pick(" + ", " - ", " * ", " / ") + randExpr(r, kindDouble, d) + ")"
		case 1:
			return "double(" + randExpr(r, kindInt, d) + ")"
		case 2:
			return "-(" + randExpr(r, kindDouble, d) + ")"
		default:
			return cond()
		}
	case kindString:
		switch r.IntN(3) {
		case 0:
			return "string(" + randExpr(r, kindInt, d) + ")"
		case 1:
			return cond()
		default:
			return "(" + randExpr(r, kindString, d) + " + " + randExpr(r, kindString, d) + ")" // left to CEL
		}
	default:
		ops := pick(" == ", " != ", " < ", " <= ", " > ", " >= ")
		switch r.IntN(6) {
		case 0:
			return "(" + randExpr(r, kindInt, d) + ops + randExpr(r, kindInt, d) + ")"
		case 1:
			return "(" + randExpr(r, kindDouble, d) + ops + randExpr(r, kindDouble, d) + ")"
		case 2:
			return "(" + randExpr(r, kindString, d) + ops + randExpr(r, kindString, d) + ")"
		case 3:
			return "(" + randExpr(r, kindBool, d) + pick(" && ", " || ", " == ", " != ") + randExpr(r, kindBool, d) + ")"
		case 4:
			return "!(" + randExpr(r, kindBool, d) + ")"
		default:
			return cond()
		}
	}
}

// TestGenerateTemplateAgreesWithCELOnRandomExpressions compares, for
// random objects of random scalar expressions of seq, the bodies and errors
// the template writes with those of the whole expression.
func TestGenerateTemplateAgreesWithCELOnRandomExpressions(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 3))
	n := 500
	if testing.Short() {
		n = 100
	}
	fast, whole := 0, 0
	for range n {
		var b strings.Builder
		b.WriteString("{")
		for j := range 1 + r.IntN(4) {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%q: %s", fmt.Sprintf("k%d", j), randExpr(r, scalarKind(1+r.IntN(4)), 1+r.IntN(4)))
		}
		b.WriteString("}")
		src := b.String()
		prog, err := expr.Compile(src)
		if err != nil {
			continue // e.g. an int literal out of range
		}
		tmpl := newBodyTemplate(prog)
		if tmpl == nil {
			// A part that fails to compile alone (a constant
			// overflow folded at compile time) keeps it whole.
			whole++
			continue
		}
		for _, p := range tmpl.parts {
			if p.fast != nil {
				fast++
			}
		}
		for _, seq := range templateSeqs {
			want, wantErr := prog.EvalBody(&expr.Input{Seq: seq})
			got, err := tmpl.write(seq, 0)
			if !bytes.Equal(got, want) || (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) {
				t.Fatalf("%s, seq %d: template wrote %s (%v), the expression %s (%v)", src, seq, got, err, want, wantErr)
			}
		}
	}
	if fast < n/2 || whole > n/5 {
		t.Errorf("%d values computed in Go, %d of %d expressions kept whole", fast, whole, n)
	}
}
