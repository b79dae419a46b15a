// Package bench compares the compiled quickstart shape (filter + map over
// JSON) with the hand-written loop a Go developer would write instead.
//
//	make bench   # go test -run '^$' -bench Quickstart -benchmem -count 6 ./bench/
//
// Both sides process the same pre-generated messages; pipe acks every
// message at its source.
package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
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

// corpus is 1024 order-like messages of about 300 bytes; one in ten is an
// error.
var corpus = func() [][]byte {
	out := make([][]byte, 1024)
	for i := range out {
		level := "info"
		if i%10 == 0 {
			level = "error"
		}
		out[i] = fmt.Appendf(nil, `{"id":%d,"level":%q,"amount":%g,"customer":{"id":"c-%d","name":"Customer %d","tier":"gold"},`+
			`"items":[{"sku":"A-%d","qty":%d},{"sku":"B-%d","qty":1}],"note":"deliver to the back door","created":"2026-11-27T04:00:00Z"}`,
			i, level, float64(i)*1.5, i%97, i%97, i, i%5+1, i)
	}
	return out
}()

// BenchmarkQuickstart/loop is the baseline: one goroutine decodes with
// encoding/json, evaluates both CEL programs with cel-go and encodes the
// result.
func BenchmarkQuickstart(b *testing.B) {
	b.Run("loop", benchLoop)
	b.Run("pipe", benchPipe)
}

func benchLoop(b *testing.B) {
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
	var kept int
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
		kept++
	}
	if kept == 0 {
		b.Fatal("nothing kept")
	}
}

func benchPipe(b *testing.B) {
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
	b.ReportAllocs()
	b.ResetTimer()
	src := &source{n: b.N}
	var written atomic.Int64
	c, err := dsl.Compile(cfg, &dsl.CompileOptions{Replace: func(n *dsl.Node) (any, bool) {
		switch n.Role {
		case pipeline.RoleSource:
			return src, true
		case pipeline.RoleSink:
			return sink{&written}, true
		}
		return nil, false
	}})
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	if got := src.acked.Load(); got != int64(b.N) {
		b.Fatalf("acked %d of %d", got, b.N)
	}
	if written.Load() == 0 {
		b.Fatal("nothing written")
	}
}

// source sends n messages from the corpus, each with an ack.
type source struct {
	n     int
	acked atomic.Int64
}

func (s *source) Read(ctx context.Context, out pipeline.Outlet) error {
	ack := func(err error) {
		if err == nil {
			s.acked.Add(1)
		}
	}
	for i := range s.n {
		if err := out.Send(ctx, pipeline.NewMessage(corpus[i%len(corpus)], ack)); err != nil {
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
