package expr_test

import (
	"fmt"

	"github.com/pipe-dsl/pipe/expr"
)

func Example() {
	filter, err := expr.Compile(`msg.level == "error"`, expr.WithBoolResult())
	if err != nil {
		panic(err)
	}
	mapper, err := expr.Compile(`{"id": msg.id, "cents": int(msg.amount * 100.0)}`)
	if err != nil {
		panic(err)
	}
	for _, raw := range []string{
		`{"id": 1, "level": "error", "amount": 15}`,
		`{"id": 2, "level": "info", "amount": 3.5}`,
		`{"id": 3, "level": "error", "amount": 15.5}`,
	} {
		in := &expr.Input{Raw: []byte(raw)}
		keep, err := filter.EvalBool(in)
		if err != nil || !keep {
			continue
		}
		body, _, err := mapper.EvalJSON(in)
		fmt.Println(string(body), err)
	}
	// Output:
	// {"cents":1500,"id":1} <nil>
	// {"cents":1550,"id":3} <nil>
}

func ExampleCompile_error() {
	_, err := expr.Compile("msg.level == 'error' &&\n  nope(msg)")
	fmt.Println(err)
	// Output:
	// 2:7: undeclared reference to 'nope'
}
