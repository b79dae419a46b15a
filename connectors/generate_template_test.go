package connectors

import (
	"bytes"
	"context"
	"errors"
	"math"
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
