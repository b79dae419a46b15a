package stages

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/pipe-dsl/pipe/expr"
	"github.com/pipe-dsl/pipe/pipeline"
)

// lookupPatchBodies vary what the patched path must re-encode as the
// decode→set→encode path does: big and negative integers, doubles,
// escapes, unicode, repeated keys, an existing into field, nesting.
var lookupPatchBodies = []string{
	`{"k":"a"}`,
	` { "z" : 1 , "k" : "a" , "a" : [ 1 , 2.50 , -0 , 1e3 ] } `,
	`{"k":"b","big":123456789012345678901234567890,"neg":-9223372036854775809,"i":9007199254740993}`,
	`{"k":"a","s":"\u00e9\u2028\ud83d\ude00 tab\t \"q\" \/ <>&","\u00fc":"x","é":"y"}`,
	`{"k":"b","customer":{"old":true},"k":"a"}`,
	`{"customer":1,"k":"c","n":{"deep":[{"x":null,"y":false}],"e":{}},"f":1.0,"g":0.1}`,
	`{"k":"a","ctl":"\u0001\u001f","emoji":"🙂"}`,
}

func TestLookupPatchedBodyIsWhatEncodingWouldGive(t *testing.T) {
	results := map[string]any{
		"a": json.RawMessage(`{"tier":"gold","big":98765432109876543210,"name":"Zoë \u2603","n":[1,2.5,-3]}`),
		"b": json.RawMessage(`"plain string"`),
		"c": json.RawMessage(`[{"b":1,"a":2},null,true]`),
	}
	l := stubLookup(t, "msg.k", results)
	want := func(body string) []byte {
		doc, err := expr.DecodeJSON([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		obj := doc.(map[string]any)
		k := obj["k"].(string)
		val, err := expr.DecodeJSON(results[k].(json.RawMessage))
		if err != nil {
			t.Fatal(err)
		}
		obj["customer"] = val
		b, err := expr.EncodeJSON(obj)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// A miss, then hits on the encoded entry; each on the raw body (the
	// patched path), on a body an earlier stage left decoded (encoded) and
	// on one an earlier stage left scanned (patched from that scan).
	for round := range 6 {
		for _, body := range lookupPatchBodies {
			msg := pipeline.NewMessage([]byte(body), nil)
			if round >= 4 {
				msg.SetDecoded(expr.ScanObject([]byte(body)))
			} else if round >= 2 {
				doc, err := expr.DecodeJSON([]byte(body))
				if err != nil {
					t.Fatal(err)
				}
				msg.SetDecoded(doc)
			}
			m, err := l.Process(context.Background(), msg)
			if err != nil {
				t.Fatalf("round %d: Process(%s): %v", round, body, err)
			}
			if w := want(body); !bytes.Equal(m.Body, w) {
				t.Errorf("round %d: Process(%s) body\n got %s\nwant %s", round, body, m.Body, w)
			}
			if d := m.Decoded(); d != nil && round < 4 {
				if enc, err := expr.EncodeJSON(d); err != nil || !bytes.Equal(enc, m.Body) {
					t.Errorf("round %d: decoded form of %s encodes to %s, %v, want the body %s", round, body, enc, err, m.Body)
				}
			}
		}
	}
	if s := l.loader.Stats(); s.Hits == 0 {
		t.Errorf("stats %+v: no cache hit, the hit path went untested", s)
	}
}
