package windowing_test

import (
	"fmt"
	"time"

	"github.com/pipe-dsl/pipe/windowing"
)

// Spend per user per 10s by event time, with 2s of out-of-order slack.
func Example() {
	e, err := windowing.New[string](windowing.Spec{
		Type: windowing.Tumbling, Size: 10 * time.Second, MaxOutOfOrder: 2 * time.Second,
		Aggs: []windowing.Agg{{Name: "spend", Func: windowing.Sum}},
	})
	if err != nil {
		panic(err)
	}
	sec := int64(time.Second)
	for _, ev := range []struct {
		id, user string
		t        int64
		amount   int64
	}{
		{"o1", "ann", 1, 5}, {"o2", "bob", 4, 3}, {"o3", "ann", 11, 2}, {"o4", "ann", 9, 1}, {"o5", "bob", 13, 7},
	} {
		added, closed, err := e.Add(windowing.Event[string]{Key: ev.user, Time: ev.t * sec, Values: []any{ev.amount}, Member: ev.id})
		if err != nil {
			panic(err)
		}
		if added.Late > 0 {
			fmt.Println(ev.id, "is late")
		}
		for _, r := range closed {
			fmt.Printf("%s [%ds,%ds) spend=%v members=%v\n", r.Key, r.Start/sec, r.End/sec, r.Values[0], r.Members)
		}
	}
	for _, r := range e.Flush(windowing.ReasonEndOfInput) {
		fmt.Printf("%s [%ds,%ds) spend=%v members=%v (%s)\n", r.Key, r.Start/sec, r.End/sec, r.Values[0], r.Members, r.Reason)
	}
	// Output:
	// ann [0s,10s) spend=6 members=[o1 o4]
	// bob [0s,10s) spend=3 members=[o2]
	// ann [10s,20s) spend=2 members=[o3] (end_of_input)
	// bob [10s,20s) spend=7 members=[o5] (end_of_input)
}
