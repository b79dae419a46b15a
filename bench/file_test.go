package bench

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/pipe-dsl/pipe/dsl"
)

// BenchmarkFileNDJSON runs the NDJSON-file workload of scripts/bench-cpu.sh
// in process, for profiles: a file of b.N corpus messages (every second an
// error, as in the script) -> filter -> map setting one field -> file sink.
//
//	go test -run '^$' -bench FileNDJSON -benchtime 200000x -cpuprofile cpu.out ./bench/
func BenchmarkFileNDJSON(b *testing.B) {
	dir := b.TempDir()
	in, out := filepath.Join(dir, "in.ndjson"), filepath.Join(dir, "out.ndjson")
	f, err := os.Create(in)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	want := 0
	for i := range b.N {
		m := corpus[i%len(corpus)]
		if i%2 == 0 {
			m = bytes.Replace(m, []byte(`"level":"info"`), []byte(`"level":"error"`), 1)
		}
		if bytes.Contains(m, []byte(`"level":"error"`)) {
			want++
		}
		w.Write(m)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	file := `
name: bench-file
source: {file: {path: ` + in + `}}
stages:
  - filter: '` + filterExpr + `'
  - map: {set: {cents: 'int(msg.amount * 100.0)'}}
sink: {file: {path: ` + out + `, append: false}}
`
	cfg, err := dsl.Parse("bench.yaml", []byte(file), nil)
	if err != nil {
		b.Fatal(err)
	}
	c, err := dsl.Compile(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	if err := c.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	got, err := os.ReadFile(out)
	if err != nil {
		b.Fatal(err)
	}
	if n := bytes.Count(got, []byte{'\n'}); n != want {
		b.Fatalf("wrote %d lines, want %d", n, want)
	}
}
