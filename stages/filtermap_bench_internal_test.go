package stages

import (
	"context"
	"fmt"
	"testing"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/expr"
	"github.com/pipe-dsl/pipe/pipeline"
)

// BenchmarkFilterThenMapSet is the stage half of the NDJSON-file workload
// of scripts/bench-cpu.sh: filter `msg.level == "error"` (every second
// message passes), then map setting cents, on the script's ~1 KiB and
// ~60-byte orders. One op is one input message:
//
//	go test -run '^$' -bench FilterThenMapSet -benchmem -count 8 ./stages/
func BenchmarkFilterThenMapSet(b *testing.B) {
	for _, size := range []string{"1k", "small"} {
		b.Run(size, func(b *testing.B) {
			bodies := [][]byte{benchOrder(0, size), benchOrder(1, size)}
			cond, err := expr.Compile(`msg.level == "error"`)
			if err != nil {
				b.Fatal(err)
			}
			cents, err := expr.Compile(`int(msg.amount * 100.0)`)
			if err != nil {
				b.Fatal(err)
			}
			f, _ := newFilter(&filterConfig{Condition: cond}, component.Env{})
			mp, err := newMap(&mapConfig{Set: map[string]*expr.Program{"cents": cents}}, component.Env{})
			if err != nil {
				b.Fatal(err)
			}
			filter, mapper := f.(pipeline.Processor), mp.(pipeline.Processor)
			ctx := context.Background()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				m, err := filter.Process(ctx, pipeline.NewMessage(bodies[i%2], nil))
				if err != nil {
					b.Fatal(err)
				}
				if m == nil {
					continue
				}
				if m, err = mapper.Process(ctx, m); err != nil || len(m.Body) == 0 {
					b.Fatal(m, err)
				}
			}
		})
	}
}

// benchOrder is the i-th message of scripts/bench-cpu.sh: level "error"
// for even i.
func benchOrder(i int, size string) []byte {
	level := "info"
	if i%2 == 0 {
		level = "error"
	}
	if size == "small" {
		return fmt.Appendf(nil, `{"id":%d,"level":"%s","amount":%.1f,"currency":"EUR"}`, i, level, float64(i)*1.5)
	}
	pad := "Please leave the parcel with the neighbour at number fourteen if nobody answers the door; the dog is friendly. Call ahead on weekdays after five. Gift wrap requested, no invoice in the box, thank you!"
	b := fmt.Appendf(nil, `{"id":%d,"level":"%s","amount":%.1f,"currency":"EUR",`, i, level, float64(i)*1.5)
	b = fmt.Appendf(b, `"customer":{"id":"c-%d","name":"Customer %d","tier":"gold","email":"customer%d@example.com","since":"2019-04-01"},`, i%97, i%97, i%97)
	b = fmt.Appendf(b, `"shipping":{"street":"12 Long Street","city":"Springfield","zip":"49007","country":"US","instructions":"deliver to the back door, ring twice"},`)
	b = fmt.Appendf(b, `"items":[{"sku":"A-%d","qty":%d,"price":12.5,"title":"Widget, large"},{"sku":"B-%d","qty":1,"price":3.25,"title":"Gadget"},`, i, i%5+1, i)
	b = fmt.Appendf(b, `{"sku":"C-%d","qty":2,"price":7,"title":"Sprocket set"},{"sku":"D-%d","qty":1,"price":99.99,"title":"Deluxe doohickey"}],`, i, i)
	b = fmt.Appendf(b, `"tags":["priority","gift","fragile","repeat-customer"],"note":"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.",`)
	return fmt.Appendf(b, `"created":"2026-11-27T04:00:00Z","updated":"2026-11-27T04:05:00Z","source":"web","version":3,"comment":"%s"}`, pad)
}
