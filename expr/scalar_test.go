package expr

import (
	"reflect"
	"testing"
)

func TestEvalScalarMatchesEvalNative(t *testing.T) {
	in := Input{Raw: []byte(`{"id": 7, "name": "x", "n": null, "big": 9007199254740993, "d": 1.5, "o": {"a": [1]}}`)}
	for _, src := range []string{"msg.id", "msg.name", "msg.n", "msg.big", "msg.d", "msg.o", "string(msg.id) + msg.name", "msg.id == 7"} {
		p, err := Compile(src)
		if err != nil {
			t.Fatal(err)
		}
		got, err1 := p.EvalScalar(&in)
		want, err2 := p.EvalNative(&in)
		if err1 != nil || err2 != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("EvalScalar(%s) = %#v, %v; EvalNative = %#v, %v", src, got, err1, want, err2)
		}
	}
}
