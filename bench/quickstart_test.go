// Package bench compares the compiled quickstart shape (filter + map over
// JSON) with the hand-written loops a Go developer would write instead: with
// a typed struct when the schema is known, with CEL over decoded JSON when
// it is not.
//
//	make bench   # go test -run '^$' -bench Quickstart -benchmem -count 6 ./bench/
//
// Both sides process the same pre-generated messages; pipe acks every
// message at its source.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/google/cel-go/cel"

	"github.com/pipe-dsl/pipe/dsl"
	"github.com/pipe-dsl/pipe/pipeline"
)

const (
	filterExpr = `msg.level == "error"`
	mapExpr    = `{"id": msg.id, "cents": int(msg.amount * 100.0)}`
)

// corpus is 1024 order-like messages of about 1 KiB; one in ten is an
// error.
var corpus = func() [][]byte {
	out := make([][]byte, 1024)
	for i := range out {
		level := "info"
		if i%10 == 0 {
			level = "error"
		}
		out[i] = fmt.Appendf(nil, `{"id":%d,"level":%q,"amount":%g,"currency":"EUR",`+
			`"customer":{"id":"c-%d","name":"Customer %d","tier":"gold","email":"customer%d@example.com","since":"2019-04-01"},`+
			`"shipping":{"street":"12 Long Street","city":"Springfield","zip":"49007","country":"US","instructions":"deliver to the back door, ring twice"},`+
			`"items":[{"sku":"A-%d","qty":%d,"price":12.5,"title":"Widget, large"},{"sku":"B-%d","qty":1,"price":3.25,"title":"Gadget"},`+
			`{"sku":"C-%d","qty":2,"price":7,"title":"Sprocket set"},{"sku":"D-%d","qty":1,"price":99.99,"title":"Deluxe doohickey"}],`+
			`"tags":["priority","gift","fragile","repeat-customer"],"note":"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.",`+
			`"created":"2026-11-27T04:00:00Z","updated":"2026-11-27T04:05:00Z","source":"web","version":3}`,
			i, level, float64(i)*1.5, i%97, i%97, i%97, i, i%5+1, i, i, i)
	}
	return out
}()

// small is 1024 messages of about 60 bytes with the fields the quickstart
// reads; one in ten is an error.
var small = func() [][]byte {
	out := make([][]byte, 1024)
	for i := range out {
		level := "info"
		if i%10 == 0 {
			level = "error"
		}
		out[i] = fmt.Appendf(nil, `{"id":%d,"level":%q,"amount":%g,"currency":"EUR"}`, 1000+i, level, float64(i)*1.5)
	}
	return out
}()

// kept is how many of the first n messages of c the filter keeps.
func kept(c [][]byte, n int) int {
	k := 0
	for i := range n {
		if bytes.Contains(c[i%len(c)], []byte(`"level":"error"`)) {
			k++
		}
	}
	return k
}

// BenchmarkQuickstart runs the quickstart shape three ways, on ~1 KiB and
// ~60-byte messages, and checks each wrote exactly the messages the filter
// keeps:
//   - typed: what a Go developer who knows the schema writes: encoding/json
//     into a struct of the three fields read, an if, a struct out;
//   - loop: the same loop with no schema: encoding/json into any, the two
//     CEL programs with cel-go, encoding/json out;
//   - pipe: the compiled pipeline (filter, map, a counting sink), every
//     message acked at its source.
//
// benchstat -col /impl compares loop and pipe with typed.
func BenchmarkQuickstart(b *testing.B) {
	for _, size := range []struct {
		name   string
		corpus [][]byte
	}{{"1KiB", corpus}, {"60B", small}} {
		b.Run("size="+size.name+"/impl=typed", func(b *testing.B) { benchTyped(b, size.corpus) })
		b.Run("size="+size.name+"/impl=loop", func(b *testing.B) { benchLoop(b, size.corpus) })
		b.Run("size="+size.name+"/impl=pipe", func(b *testing.B) { benchPipe(b, size.corpus) })
	}
}

func benchTyped(b *testing.B, corpus [][]byte) {
	type order struct {
		ID     int64   `json:"id"`
		Level  string  `json:"level"`
		Amount float64 `json:"amount"`
	}
	type out struct {
		ID    int64 `json:"id"`
		Cents int64 `json:"cents"`
	}
	written := 0
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		var o order
		if err := json.Unmarshal(corpus[i%len(corpus)], &o); err != nil {
			b.Fatal(err)
		}
		if o.Level != "error" {
			continue
		}
		if _, err := json.Marshal(out{ID: o.ID, Cents: int64(o.Amount * 100)}); err != nil {
			b.Fatal(err)
		}
		written++
	}
	if want := kept(corpus, b.N); written != want {
		b.Fatalf("wrote %d, want %d", written, want)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

func benchLoop(b *testing.B, corpus [][]byte) {
	env, err := cel.NewEnv(cel.Variable("msg", cel.DynType))
	if err != nil {
		b.Fatal(err)
	}
	prog := func(src string) cel.Program {
		ast, iss := env.Compile(src)
		if iss.Err() != nil {
			b.Fatal(iss.Err())
		}
		p, err := env.Program(ast)
		if err != nil {
			b.Fatal(err)
		}
		return p
	}
	filter, mapper := prog(filterExpr), prog(mapExpr)
	mapType := reflect.TypeFor[map[string]any]()
	written := 0
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		var msg any
		if err := json.Unmarshal(corpus[i%len(corpus)], &msg); err != nil {
			b.Fatal(err)
		}
		act := map[string]any{"msg": msg}
		ok, _, err := filter.Eval(act)
		if err != nil {
			b.Fatal(err)
		}
		if ok.Value() != true {
			continue
		}
		v, _, err := mapper.Eval(act)
		if err != nil {
			b.Fatal(err)
		}
		nat, err := v.ConvertToNative(mapType)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := json.Marshal(nat); err != nil {
			b.Fatal(err)
		}
		written++
	}
	if want := kept(corpus, b.N); written != want {
		b.Fatalf("wrote %d, want %d", written, want)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

func benchPipe(b *testing.B, corpus [][]byte) {
	c, src, written := compileQuickstart(b, corpus, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	if err := c.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	if got := src.acked.Load(); got != int64(b.N) {
		b.Fatalf("acked %d of %d", got, b.N)
	}
	if got, want := written.Load(), int64(kept(corpus, b.N)); got != want {
		b.Fatalf("wrote %d, want %d", got, want)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// compileQuickstart compiles the quickstart shape with a source of n
// messages from corpus and a counting sink.
func compileQuickstart(b *testing.B, corpus [][]byte, n int) (*dsl.Compiled, *source, *atomic.Int64) {
	const file = `
name: bench
source: {stdin: {}}
stages:
  - filter: '` + filterExpr + `'
  - map: '` + mapExpr + `'
sink: {drop: {}}
`
	cfg, err := dsl.Parse("bench.yaml", []byte(file), nil)
	if err != nil {
		b.Fatal(err)
	}
	src := &source{n: n, corpus: corpus}
	written := new(atomic.Int64)
	c, err := dsl.Compile(cfg, &dsl.CompileOptions{Replace: func(n *dsl.Node) (any, bool) {
		switch n.Role {
		case pipeline.RoleSource:
			return src, true
		case pipeline.RoleSink:
			return sink{written}, true
		}
		return nil, false
	}})
	if err != nil {
		b.Fatal(err)
	}
	return c, src, written
}

// BenchmarkQuickstartMemory runs 10M messages through the quickstart shape
// once and reports the live heap after the first and the last million:
// memory stays flat when the two match.
//
//	go test -run '^$' -bench QuickstartMemory -benchtime 1x ./bench/
func BenchmarkQuickstartMemory(b *testing.B) {
	const n, step = 10_000_000, 1_000_000
	for b.Loop() {
		c, src, _ := compileQuickstart(b, corpus, n)
		heap := func() float64 {
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			return float64(ms.HeapAlloc) / (1 << 20)
		}
		var first, last float64
		src.every, src.at = step, func(i int) {
			switch i {
			case step:
				first = heap()
			case n - step:
				last = heap()
			}
		}
		if err := c.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
		if got := src.acked.Load(); got != n {
			b.Fatalf("acked %d of %d", got, n)
		}
		b.ReportMetric(first, "heap-MiB-at-1M")
		b.ReportMetric(last, "heap-MiB-at-9M")
		if last > first*1.5+4 {
			b.Errorf("live heap grew from %.1f MiB to %.1f MiB", first, last)
		}
	}
}

// source sends n messages from corpus, each with an ack; if at is set it
// is called (on the source goroutine) every every messages.
type source struct {
	n      int
	corpus [][]byte
	acked  atomic.Int64
	every  int
	at     func(i int)
}

func (s *source) Read(ctx context.Context, out pipeline.Outlet) error {
	ack := func(err error) {
		if err == nil {
			s.acked.Add(1)
		}
	}
	for i := range s.n {
		if s.at != nil && i > 0 && i%s.every == 0 {
			s.at(i)
		}
		if err := out.Send(ctx, pipeline.NewMessage(s.corpus[i%len(s.corpus)], ack)); err != nil {
			return err
		}
	}
	return nil
}

// sink counts what it is given.
type sink struct{ n *atomic.Int64 }

func (s sink) Write(_ context.Context, m *pipeline.Message) error {
	s.n.Add(1)
	return nil
}
