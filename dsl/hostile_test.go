package dsl_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/dsl"
	"github.com/pipe-dsl/pipe/expr"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

// hostileCase is one config of testdata/hostile that must be rejected: its
// "# want:" header lines each name a message the errors must contain.
type hostileCase struct {
	name string
	file string
	src  []byte
	want []string
}

// hostileCases reads the corpus and adds the cases too large to check in.
func hostileCases(tb testing.TB) []hostileCase {
	tb.Helper()
	files, err := filepath.Glob("../testdata/hostile/*.yaml")
	if err != nil || len(files) == 0 {
		tb.Fatalf("no hostile corpus: %v", err)
	}
	var out []hostileCase
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		c := hostileCase{name: strings.TrimSuffix(filepath.Base(f), ".yaml"), file: f, src: src}
		sc := bufio.NewScanner(bytes.NewReader(src))
		for sc.Scan() {
			if w, ok := strings.CutPrefix(sc.Text(), "# want: "); ok {
				c.want = append(c.want, w)
			}
		}
		if len(c.want) > 0 {
			out = append(out, c)
		}
	}
	huge := bytes.Repeat([]byte("# padding\n"), 10<<20) // 100 MiB
	return append(out,
		hostileCase{name: "100MiB", file: "huge.yaml", src: huge, want: []string{"pipeline file is too large: 104857600 bytes"}},
		hostileCase{name: "deep_10000", file: "deep.yaml", src: []byte("name: " + strings.Repeat("[", 10000) + strings.Repeat("]", 10000)),
			want: []string{"document nests deeper than 100 levels"}},
		hostileCase{name: "deep_block_10000", file: "deep.yaml", src: []byte("name:\n" + strings.Repeat("- ", 10000) + "x\n"),
			want: []string{"document nests deeper than 100 levels"}},
	)
}

// hostileLookup leaves the PIPE_HOSTILE_UNSET_* variables unset.
func hostileLookup(name string) (string, bool) {
	if strings.HasPrefix(name, "PIPE_HOSTILE_UNSET_") {
		return "", false
	}
	return "value", true
}

func compileHostile(c hostileCase) error {
	cfg, err := dsl.Parse(c.file, c.src, &dsl.Options{Lookup: hostileLookup})
	if err != nil {
		return err
	}
	_, err = dsl.Compile(cfg, &dsl.CompileOptions{Options: dsl.Options{Lookup: hostileLookup}})
	return err
}

var positioned = regexp.MustCompile(`^[^:\s]+\.yaml:\d+:\d+: `)

// Every hostile config is rejected with every expected message, each
// error positioned. Time bounds are in BenchmarkHostileConfigs.
func TestHostileConfigsAreRejectedWithPositionedErrors(t *testing.T) {
	for _, c := range hostileCases(t) {
		t.Run(c.name, func(t *testing.T) {
			err := compileHostile(c)
			var errs dsl.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("got %v, want dsl.Errors", err)
			}
			for _, e := range errs {
				if !positioned.MatchString(e.Error()) {
					t.Errorf("error without file:line:col: %q", e.Error())
				}
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("errors do not mention %q:\n%v", w, err)
				}
			}
		})
	}
}

// hostileBound is how long rejecting any hostile config may take.
const hostileBound = 250 * time.Millisecond

// BenchmarkHostileConfigs measures how long each hostile config takes to be
// rejected and fails when one takes longer than hostileBound.
//
//	go test -run '^$' -bench HostileConfigs -benchtime 3x ./dsl/
func BenchmarkHostileConfigs(b *testing.B) {
	for _, c := range hostileCases(b) {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if compileHostile(c) == nil {
					b.Fatal("accepted")
				}
			}
			if per := b.Elapsed() / time.Duration(b.N); per > hostileBound {
				b.Fatalf("rejecting took %v per config, bound %v", per, hostileBound)
			}
		})
	}
}

// The 100 MiB file costs no more to reject than the size limit: ParseFile
// reads only past the limit.
func TestAHugeFileIsRejectedWithoutReadingIt(t *testing.T) {
	f := filepath.Join(t.TempDir(), "huge.yaml")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(f, 100<<20); err != nil {
		t.Fatal(err)
	}
	_, err := dsl.ParseFile(f, nil)
	if err == nil || !strings.Contains(err.Error(), "huge.yaml:1:1: pipeline file is too large: 104857600 bytes") {
		t.Fatalf("ParseFile(100 MiB) = %v", err)
	}
}

// runHostile runs the pipeline in file with bodies as input and returns
// the delivered bodies and the dead letters.
func runHostile(t *testing.T, file string, lookup func(string) (string, bool), bodies ...string) (delivered []string, dead []pipeline.DeadLetter) {
	t.Helper()
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// The corpus files have no dead_letter slot; give them one.
	src = append(src, "dead_letter: {drop: {}}\n"...)
	cfg, err := dsl.Parse(file, src, &dsl.Options{Lookup: lookup})
	if err != nil {
		t.Fatal(err)
	}
	out, dl := &pipelinetest.Sink{}, &pipelinetest.Sink{}
	c, err := dsl.Compile(cfg, &dsl.CompileOptions{Options: dsl.Options{Lookup: lookup}, Replace: func(n *dsl.Node) (any, bool) {
		switch {
		case n == cfg.DeadLetter:
			return dl, true
		case n.Role == pipeline.RoleSource:
			return pipelinetest.NewSource(bodies...), true
		case n.Role == pipeline.RoleSink:
			return out, true
		}
		return nil, false
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, b := range dl.Bodies() {
		var d pipeline.DeadLetter
		if err := json.Unmarshal([]byte(b), &d); err != nil {
			t.Fatal(err)
		}
		dead = append(dead, d)
	}
	return out.Bodies(), dead
}

// An expression whose cost depends on the message is accepted, and the
// cost or time limit stops it per message: that message is dead-lettered, the
// next one still flows.
func TestHostileExpressionsFailPerMessage(t *testing.T) {
	items := "[" + strings.Repeat("1,", 199) + "1]"
	delivered, dead := runHostile(t, "../testdata/hostile/cel_forever.yaml", nil,
		`{"items": `+items+`}`, `{"items": [1]}`)
	if len(delivered) != 1 || delivered[0] != `{"items": [1]}` {
		t.Errorf("delivered %q, want only the small message", delivered)
	}
	// The cost limit or, on a slow machine, the time limit stops it first.
	if len(dead) != 1 || dead[0].Reason != pipeline.ReasonExpression || !strings.Contains(dead[0].Error, "limit exceeded") {
		t.Fatalf("dead letters %+v, want one expression_error about a limit", dead)
	}
}

// A map whose concatenations would allocate 200 MB for one message is
// stopped by the cost limit: that message is dead-lettered as an
// expression error, the next one flows, and the run stays small.
func TestHostileConcatenationIsDeadLettered(t *testing.T) {
	hostile := `{"s": "` + strings.Repeat("a", 20_000) + `", "items": [` + strings.Repeat("1,", 4_999) + `1]}`
	var delivered []string
	var dead []pipeline.DeadLetter
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	delivered, dead = runHostile(t, "../testdata/hostile/cel_concat.yaml", nil, hostile, `{"s": "b", "items": [1]}`)
	runtime.ReadMemStats(&after)
	if len(delivered) != 1 || !strings.Contains(delivered[0], `"copies":["bb"]`) {
		t.Errorf("delivered %q, want only the small message", delivered)
	}
	if len(dead) != 1 || dead[0].Reason != pipeline.ReasonExpression || !strings.Contains(dead[0].Error, "cost limit") {
		t.Fatalf("dead letters %+v, want one expression_error about the cost limit", dead)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<20 {
		t.Errorf("the run allocated %d MB, want under 64 MB", n>>20)
	}
}

// An environment value holding YAML is substituted as one string: it
// cannot add keys or nodes to the pipeline.
func TestEnvValuesStayStrings(t *testing.T) {
	const injected = "x}\nsink: {drop: {}}\nstages: [{filter: 'false'}]\n"
	lookup := func(string) (string, bool) { return injected, true }
	cfg, err := dsl.ParseFile("../testdata/hostile/env_yaml.yaml", &dsl.Options{Lookup: lookup})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, n := range cfg.Nodes {
		kinds = append(kinds, n.Kind)
	}
	if strings.Join(kinds, ",") != "file,stdout" {
		t.Fatalf("nodes %v, want file,stdout", kinds)
	}
	if got := cfg.Nodes[0].Body.Content[1].Value; got != injected {
		t.Fatalf("path = %q, want the env value verbatim", got)
	}
}

// RE2 has no backtracking: the pattern of regex_backtrack.yaml, exponential
// for a backtracking engine, fails on a long non-matching input in linear
// time. Compare the ns/op of the sizes: ten times the input, about ten
// times the time.
//
//	go test -run '^$' -bench HostileRegex ./dsl/
func BenchmarkHostileRegex(b *testing.B) {
	p, err := expr.Compile(`msg.text.matches("(a+)+$")`)
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{1_000, 10_000, 100_000} {
		body := []byte(`{"text": "` + strings.Repeat("a", n) + `!"}`)
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if ok, err := p.EvalBool(&expr.Input{Raw: body}); ok || err != nil {
					b.Fatalf("EvalBool = %v, %v; want false", ok, err)
				}
			}
		})
	}
}

// FuzzCompile checks that Parse and Compile never panic on any document and
// that every error they report carries a position. The seeds are the
// example pipelines and the hostile corpus.
func FuzzCompile(f *testing.F) {
	files, _ := filepath.Glob("../pipelines/*.yaml")
	more, _ := filepath.Glob("../testdata/hostile/*.yaml")
	for _, file := range append(files, more...) {
		if src, err := os.ReadFile(file); err == nil {
			f.Add(src)
		}
	}
	lookup := func(string) (string, bool) { return "v", true }
	f.Fuzz(func(t *testing.T, src []byte) {
		cfg, err := dsl.Parse("f.yaml", src, &dsl.Options{Lookup: lookup})
		if err == nil {
			_, err = dsl.Compile(cfg, &dsl.CompileOptions{Options: dsl.Options{Lookup: lookup}})
		}
		var errs dsl.Errors
		if err != nil && !errors.As(err, &errs) {
			t.Fatalf("error %T is not dsl.Errors: %v", err, err)
		}
		for _, e := range errs {
			if e.Pos.Line < 1 || e.Pos.Col < 1 {
				t.Fatalf("error without a position: %v", e)
			}
		}
	})
}
