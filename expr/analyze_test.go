package expr

import (
	"reflect"
	"testing"
)

func TestAnalyzeMsg(t *testing.T) {
	run := func(src string, use msgUse, fields ...string) {
		t.Helper()
		p := mustCompile(t, src)
		if p.access.use != use || !reflect.DeepEqual(p.access.fields, fields) {
			t.Errorf("analyzeMsg(%#q) = %v %q, want %v %q", src, p.access.use, p.access.fields, use, fields)
		}
	}
	run(`seq > 1 && meta.k == "v"`, msgUnused)
	run(`msg.level == "error"`, msgFields, "level")
	run(`{"id": msg.id, "cents": int(msg.amount * 100.0), "again": msg.id}`, msgFields, "id", "amount")
	run(`has(msg.a) && msg["b"] > 1 && msg.?c.hasValue() && msg[?"d"].orValue(1) > 0`, msgFields, "a", "b", "c", "d")
	run(`msg.user.name.startsWith("j")`, msgFields, "user")
	run(`msg.tags.exists(t, t == "x")`, msgFields, "tags")
	run(`[1, 2].exists(x, x == msg.n)`, msgFields, "n")
	run(`msg`, msgWhole)
	run(`{"all": msg}`, msgWhole)
	run(`msg.size() > 1`, msgWhole)
	run(`"a" in msg`, msgWhole)
	run(`msg.exists(k, k == "a")`, msgWhole)
	run(`msg[meta.key]`, msgWhole)
	run(`msg.a == 1 && msg == {}`, msgWhole)
	run(`[1].map(msg, msg + 1)`, msgWhole)
	run(`cel.bind(msg, 1, msg)`, msgWhole)
}

// corpusExprs and corpusBodies are evaluated with field-wise and whole
// decoding, which must agree on every pair.
var (
	corpusExprs = []string{
		`msg.level == "error"`,
		`{"id": msg.id, "cents": int(msg.amount * 100.0)}`,
		`has(msg.user) && has(msg.user.id)`,
		`msg.?user.?country.orValue("none")`,
		`msg["trace_id"] + "/" + msg.span_id`,
		`msg.tags.exists(t, t == "eu") || msg.retries > 2`,
		`msg.items.map(i, i.qty * i.price)`,
		`msg.level`,
		`[msg.id, msg.success, msg.error, msg.message]`,
		`msg.a + msg.b`,
		`msg["k\u00e9y"]`,
		`msg["kéy"]`,
	}
	corpusBodies = []string{
		`{}`,
		`{"level":"error","id":1,"amount":15,"user":{"id":"u"},"trace_id":"t","span_id":"s","tags":["eu"],"retries":0,"items":[{"qty":2,"price":1.5}],"success":true,"error":null,"message":"m"}`,
		`{"level":"info","id":9007199254740993,"amount":15.5,"user":{"country":"DE"},"tags":[],"retries":3}`,
		`{"level":"error","level":"info"}`,
		`{"a":1,"b":2.5}`,
		`{"a":"x","b":"y"}`,
		`{"a":1,"b":"y"}`,
		`{"k\u00e9y":1,"kéy":2}`,
		`{"kéy":[1,{"z":"\ud83d\ude00"}]}`,
		`[1,2]`,
		`null`,
		`"level"`,
		`{"level":"error","junk":[1,2,}`,
		`{"level":"error"} x`,
		`{"level":"error",}`,
		`{"level":"\u00"}`,
		`  {"level" : "error" , "id" : 1 }  `,
	}
)

func TestFieldsMatchWholeDecoding(t *testing.T) {
	for _, src := range corpusExprs {
		for _, body := range corpusBodies {
			evalJSON(t, src, body)
		}
	}
	raw, err := readMessage()
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range corpusExprs {
		if got := evalJSON(t, src, string(raw)); src == benchMap && got != `{"cents":1550,"id":1234567}` {
			t.Errorf("Eval(%#q) on testdata/message.json = %s", src, got)
		}
	}
}
