package stages_test

import (
	"context"
	"slices"
	"testing"

	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

// Integers beyond int64 and uint64 that no expression touches pass through
// a map byte for byte; one an expression reads is a double (issue 20
// item 8).
func TestMapKeepsUntouchedBigIntegers(t *testing.T) {
	for _, tc := range []struct{ stage, in, want string }{
		{`map: {set: {x: 'msg.id + 1'}}`,
			`{"id":12,"big":-9223372036854775809}`, `{"big":-9223372036854775809,"id":12,"x":13}`},
		{`map: {set: {x: 'msg.id + 1'}}`,
			`{"id":12,"n":{"big":[18446744073709551616123]}}`, `{"id":12,"n":{"big":[18446744073709551616123]},"x":13}`},
		{`map: 'msg'`, `{"big":-9223372036854775809}`, `{"big":-9223372036854775809}`},
		{`map: '{"b": msg.big, "neg": msg.big < 0.0}'`, `{"big":-9223372036854775809}`, `{"b":-9223372036854776000,"neg":true}`},
	} {
		got, dead := runStage(t, tc.stage, tc.in)
		if len(got) != 1 || got[0] != tc.want || len(dead) != 0 {
			t.Errorf("%s on %s = %q (dead letters %v), want %s", tc.stage, tc.in, got, dead, tc.want)
		}
	}
}

// Given one decoded body shared by two branches, when a map on each sets
// its own field, then neither branch sees the other's field: a map changes
// only a decoded body it decoded itself, and copies a shared one.
func TestMapOnTwoBranchesDoesNotShareItsChanges(t *testing.T) {
	const src = `
sources:
  in: {generate: {message: '{}'}}
stages:
  whole: {filter: 'size(msg) > 0', inputs: [in]}
  a: {map: {set: {a: '1', nested.a: '1'}}, inputs: [whole]}
  b: {map: {set: {b: '2', nested.b: '2'}}, inputs: [whole]}
sinks:
  outa: {stdout: {}, inputs: [a]}
  outb: {stdout: {}, inputs: [b]}
`
	feed := pipelinetest.NewSource(`{"id":1,"nested":{"k":0}}`, `{"id":2,"nested":{"k":0}}`)
	outa, outb := &pipelinetest.Sink{}, &pipelinetest.Sink{}
	p := compile(t, src, feed, map[string]*pipelinetest.Sink{"outa": outa, "outb": outb})
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		sink *pipelinetest.Sink
		want []string
	}{
		{outa, []string{`{"a":1,"id":1,"nested":{"a":1,"k":0}}`, `{"a":1,"id":2,"nested":{"a":1,"k":0}}`}},
		{outb, []string{`{"b":2,"id":1,"nested":{"b":2,"k":0}}`, `{"b":2,"id":2,"nested":{"b":2,"k":0}}`}},
	} {
		if got := tc.sink.Bodies(); !slices.Equal(got, tc.want) {
			t.Errorf("bodies = %q, want %q", got, tc.want)
		}
	}
}

// Given a map that replaces the body (and leaves it undecoded), when later
// stages read fields of the new body, then they read the new body, not the
// old one.
func TestStagesAfterAMapReadTheNewBody(t *testing.T) {
	got, dead := runStage(t, `map: '{"id": msg.id, "level": "error", "n": {"k": msg.id * 2}}'
  - filter: 'msg.level == "error" && msg.n.k == 4'
  - map: {set: {seen: 'msg.n.k + 1'}}`, `{"id":2,"level":"info"}`, `{"id":3,"level":"error"}`)
	if want := []string{`{"id":2,"level":"error","n":{"k":4},"seen":5}`}; !slices.Equal(got, want) || len(dead) != 0 {
		t.Errorf("bodies = %q (dead letters %v), want %q", got, dead, want)
	}
}
