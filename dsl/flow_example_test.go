package dsl_test

import (
	"context"
	"fmt"

	"github.com/reugn/go-streams/extension"
	"github.com/reugn/go-streams/flow"

	"github.com/pipe-dsl/pipe/dsl"
)

// A stages-only pipeline file runs as a go-streams Flow between a
// go-streams source and sink.
func ExampleNewFlow() {
	const stages = `
name: evens
stages:
  - filter: msg.id % 2 == 0
  - map: '{"id": msg.id, "square": msg.id * msg.id}'
`
	f, err := dsl.NewFlow(context.Background(), "evens.yaml", []byte(stages), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	in, out := make(chan any), make(chan any)
	go func() {
		defer close(in)
		for i := 1; i <= 6; i++ {
			in <- fmt.Sprintf(`{"id": %d}`, i)
		}
	}()
	toString := flow.NewMap(func(b []byte) string { return string(b) }, 1)
	go extension.NewChanSource(in).Via(f).Via(toString).To(extension.NewChanSink(out))
	for s := range out {
		fmt.Println(s)
	}
	fmt.Println("err:", f.Err())
	// Output:
	// {"id":2,"square":4}
	// {"id":4,"square":16}
	// {"id":6,"square":36}
	// err: <nil>
}
