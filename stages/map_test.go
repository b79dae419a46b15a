package stages_test

import (
	"context"
	"slices"
	"strings"
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

// A map that sets and deletes top-level fields patches the body without
// decoding it whole; given any body, it writes the same bytes, and
// dead-letters with the same reason and error, as decoding, changing and
// encoding it (the path nested fields take). After a filter that scanned
// the body, the map patches it from that scan, with the same results.
func TestMapSetWritesWhatDecodingAndEncodingWould(t *testing.T) {
	const mapStage = `map: {set: {cents: 'int(msg.amount * 100.0)', tag: '"x"'}, delete: [drop]}`
	const afterFilter = "filter: '!has(msg.zzz)'\n  - " + mapStage
	pad := strings.Repeat("p", 300) // a body the filter keeps its scan of
	for _, tc := range []struct{ in, want, reason, err string }{
		{in: "{ \"b\": [1, 2.50, {\"y\": null, \"x\": \"\\u00e9\"}], \"amount\": 1.5, \"drop\": 1 }",
			want: `{"amount":1.5,"b":[1,2.5,{"x":"é","y":null}],"cents":150,"tag":"x"}`},
		{in: `{"amount":2,"tag":"old","tag":"older","cents":"no"}`, want: `{"amount":2,"cents":200,"tag":"x"}`},
		{in: `{"amount":1.5,"big":18446744073709551616123}`, want: `{"amount":1.5,"big":18446744073709551616123,"cents":150,"tag":"x"}`},
		{in: `{"amount":1.5`, reason: "invalid_payload", err: "unexpected end of input, want ',' or '}'"},
		{in: `[{"amount":1.5}]`, reason: "invalid_payload", err: "map set/delete needs a JSON object body, got an array"},
		{in: `{"amount":"1.5"}`, reason: "expression_error", err: "set cents: 1:16: no such overload: string * double"},
		{in: `{"other":1}`, reason: "expression_error", err: "set cents: 1:8: no such key: amount"},
		{in: `{"amount":1e400}`, reason: "invalid_payload", err: "number out of range"},
		{in: `{"amount":0.5,"b":{"z":1,"a":[1.50,"\u0041",-0]},"c":"plain","d":{"a":1,"b":[]},"pad":"` + pad + `"}`,
			want: `{"amount":0.5,"b":{"a":[1.5,"A",0],"z":1},"c":"plain","cents":50,"d":{"a":1,"b":[]},"pad":"` + pad + `","tag":"x"}`},
		{in: `{"drop":[1],"amount":2,"tag":"old","pad":"` + pad + `","tag":"older"}`, want: `{"amount":2,"cents":200,"pad":"` + pad + `","tag":"x"}`},
		{in: `{"amount":"1.5","pad":"` + pad + `"}`, reason: "expression_error", err: "set cents: 1:16: no such overload: string * double"},
	} {
		stages := []string{mapStage}
		if strings.HasPrefix(tc.in, "{") && tc.reason != "invalid_payload" {
			stages = append(stages, afterFilter)
		}
		for _, stage := range stages {
			checkMapStage(t, stage, tc.in, tc.want, tc.reason, tc.err)
		}
	}
}

// checkMapStage runs stage on in and checks that it writes want, or else
// dead-letters in with reason and an error containing err.
func checkMapStage(t *testing.T, stage, in, want, reason, err string) {
	t.Helper()
	got, dead := runStage(t, stage, in)
	if reason == "" {
		if len(got) != 1 || got[0] != want || len(dead) != 0 {
			t.Errorf("%s on %s = %q (dead letters %v), want %s", stage, in, got, dead, want)
		}
		return
	}
	if len(got) != 0 || len(dead) != 1 || dead[0].Reason != reason || !strings.Contains(dead[0].Error, err) {
		t.Errorf("%s on %s = %q, dead letters %+v; want one with reason %s and error containing %q", stage, in, got, dead, reason, err)
	}
}
