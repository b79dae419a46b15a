// Package pipetest runs pipeline tests written in YAML next to a pipeline
// (`pipe test`): messages in, optional fault injection on sinks and steps
// of a virtual clock, and expectations on what the sinks, the dead-letter
// sink and the stages saw.
//
//	pipeline: orders.yaml            # relative to the test file
//	env: {API_TOKEN: test}           # ${VAR} values for this file
//	tests:
//	  - name: big orders are kept
//	    input:                       # bodies for the single source
//	      - {id: 1, amount: 250}     # YAML/JSON values are encoded as JSON
//	      - 'not json'               # strings are raw bodies
//	    faults:
//	      out: {fail: 2, error: "503 unavailable", latency: 100ms}
//	    stubs:                       # a lookup stage's results by key
//	      enrich: {"1": {tier: gold}}   # keys not listed are missing
//	    expect:
//	      sinks: {out: [{id: 1, cents: 25000}]}
//	      dead_letters: [{stage: parse, reason: invalid_payload}]
//	      dropped: {small: 0}
//	      breakers: {out: [open, half_open, closed]}
//	      flush_reasons: {size: 2, wait: 1}
//	      figures: {spend: {windows_closed.watermark: 2, late: 1}}
//
// Time is virtual: the clock stands still while the pipeline works and
// jumps to the next timer when nothing else can happen, so a 30s recovery
// timeout takes milliseconds. steps (send, advance) interleave inputs with
// explicit clock moves.
package pipetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/pipe-dsl/pipe/dsl"
)

// File is a parsed test file.
type File struct {
	Path     string
	Pipeline string            // path of the pipeline file
	Env      map[string]string // ${VAR} values
	Tests    []*Case
}

// Case is one test.
type Case struct {
	Name   string
	Line   int                 // of the test in its file
	Inputs map[string][][]byte // source node ("" = the only source) -> bodies
	Steps  []Step
	Faults map[string]Fault // sink node -> fault
	// Stubs replace a lookup stage's store: node -> key text -> result.
	Stubs  map[string]map[string]any
	Expect Expect
}

// Step is one send or one clock advance.
type Step struct {
	Send    map[string][][]byte
	Advance time.Duration
}

// Fault is injected into a sink: the first Fail writes fail with Error,
// and every write takes Latency of virtual time.
type Fault struct {
	Fail    int
	Error   string
	Latency time.Duration
}

// Expect lists what must hold once the pipeline has drained. Absent
// fields are not checked.
type Expect struct {
	Sinks       map[string][]any // sink node -> bodies in order
	Counts      map[string]int   // sink node -> messages written
	DeadLetters []map[string]any // subset of each envelope, in order
	Dropped     map[string]int64 // node -> dropped
	Acked       *int
	Nacked      *int
	// Breakers lists, per node, the states its circuit breaker moved to,
	// in order: [open, half_open, closed].
	Breakers map[string][]string
	// FlushReasons counts the batches the sinks accepted by the
	// batch.flush_reason the batch stage gave them: {size: 2, wait: 1}.
	// Reasons not listed must not occur.
	FlushReasons map[string]int
	// Figures checks a node's own figures (pipeline.Reporter) at the end:
	// node -> "name" or "name.label_value" -> value.
	Figures map[string]map[string]float64
}

// raw test file shapes, decoded strictly.
type rawFile struct {
	Pipeline string            `yaml:"pipeline"`
	Env      map[string]string `yaml:"env"`
	Tests    []rawCase         `yaml:"tests"`
}

type rawCase struct {
	Name   string                          `yaml:"name"`
	Input  []yaml.Node                     `yaml:"input"`
	Inputs map[string][]yaml.Node          `yaml:"inputs"`
	Steps  []rawStep                       `yaml:"steps"`
	Faults map[string]rawFault             `yaml:"faults"`
	Stubs  map[string]map[string]yaml.Node `yaml:"stubs"`
	Expect rawExpect                       `yaml:"expect"`
}

type rawStep struct {
	Send    yaml.Node `yaml:"send"`
	Advance string    `yaml:"advance"`
}

type rawFault struct {
	Fail    int    `yaml:"fail"`
	Error   string `yaml:"error"`
	Latency string `yaml:"latency"`
}

type rawExpect struct {
	Sinks        map[string][]yaml.Node        `yaml:"sinks"`
	Counts       map[string]int                `yaml:"counts"`
	DeadLetters  []map[string]any              `yaml:"dead_letters"`
	Dropped      map[string]int64              `yaml:"dropped"`
	Acked        *int                          `yaml:"acked"`
	Nacked       *int                          `yaml:"nacked"`
	Breakers     map[string][]string           `yaml:"breakers"`
	FlushReasons map[string]int                `yaml:"flush_reasons"`
	Figures      map[string]map[string]float64 `yaml:"figures"`
}

// Parse reads a test file's content.
func Parse(path string, src []byte) (*File, error) {
	root, errs := dsl.LoadYAML(path, src)
	if len(errs) > 0 {
		return nil, errs
	}
	// LoadYAML bounded size, aliases and depth; decode strictly now.
	var rf rawFile
	d := yaml.NewDecoder(bytes.NewReader(src))
	d.KnownFields(true)
	if err := d.Decode(&rf); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if rf.Pipeline == "" {
		return nil, fmt.Errorf("%s: missing pipeline: the pipeline file under test", path)
	}
	if len(rf.Tests) == 0 {
		return nil, fmt.Errorf("%s: no tests", path)
	}
	f := &File{Path: path, Pipeline: rf.Pipeline, Env: rf.Env}
	for i, rc := range rf.Tests {
		c, err := parseCase(rc)
		if err != nil {
			name := rc.Name
			if name == "" {
				name = fmt.Sprintf("#%d", i+1)
			}
			return nil, fmt.Errorf("%s: test %s: %v", path, name, err)
		}
		if c.Name == "" {
			c.Name = fmt.Sprintf("test_%d", i+1)
		}
		if tests := mapValue(root, "tests"); tests != nil && i < len(tests.Content) {
			c.Line = tests.Content[i].Line
		}
		f.Tests = append(f.Tests, c)
	}
	return f, nil
}

func parseCase(rc rawCase) (*Case, error) {
	c := &Case{Name: rc.Name, Inputs: map[string][][]byte{}, Faults: map[string]Fault{}}
	if len(rc.Input) > 0 {
		bodies, err := bodiesOf(rc.Input)
		if err != nil {
			return nil, err
		}
		c.Inputs[""] = bodies
	}
	for src, nodes := range rc.Inputs {
		bodies, err := bodiesOf(nodes)
		if err != nil {
			return nil, err
		}
		c.Inputs[src] = bodies
	}
	for _, rs := range rc.Steps {
		var s Step
		if rs.Advance != "" {
			d, err := dsl.ParseDuration(rs.Advance)
			if err != nil || d <= 0 {
				return nil, fmt.Errorf("advance %q: want a positive duration", rs.Advance)
			}
			s.Advance = d
		}
		switch rs.Send.Kind {
		case 0:
		case yaml.SequenceNode:
			bodies, err := bodiesOf(nodesOf(rs.Send.Content))
			if err != nil {
				return nil, err
			}
			s.Send = map[string][][]byte{"": bodies}
		case yaml.MappingNode:
			s.Send = map[string][][]byte{}
			for i := 0; i+1 < len(rs.Send.Content); i += 2 {
				bodies, err := bodiesOf(nodesOf(rs.Send.Content[i+1].Content))
				if err != nil {
					return nil, err
				}
				s.Send[rs.Send.Content[i].Value] = bodies
			}
		default:
			return nil, fmt.Errorf("send: want a list of messages, or a mapping of source names to lists")
		}
		if (s.Advance > 0) == (s.Send != nil) {
			return nil, fmt.Errorf("each step is either send or advance")
		}
		c.Steps = append(c.Steps, s)
	}
	for sink, rf := range rc.Faults {
		f := Fault{Fail: rf.Fail, Error: rf.Error}
		if f.Error == "" {
			f.Error = "injected failure"
		}
		if rf.Latency != "" {
			d, err := dsl.ParseDuration(rf.Latency)
			if err != nil || d < 0 {
				return nil, fmt.Errorf("faults.%s.latency %q: want a duration", sink, rf.Latency)
			}
			f.Latency = d
		}
		c.Faults[sink] = f
	}
	for node, results := range rc.Stubs {
		if c.Stubs == nil {
			c.Stubs = map[string]map[string]any{}
		}
		c.Stubs[node] = map[string]any{}
		for key, n := range results {
			v, err := valueOf(&n)
			if err != nil {
				return nil, fmt.Errorf("stubs.%s.%s: %w", node, key, err)
			}
			c.Stubs[node][key] = v
		}
	}
	e := rc.Expect
	c.Expect = Expect{Counts: e.Counts, DeadLetters: e.DeadLetters, Dropped: e.Dropped, Acked: e.Acked, Nacked: e.Nacked,
		FlushReasons: e.FlushReasons, Figures: e.Figures}
	if e.Breakers != nil {
		c.Expect.Breakers = map[string][]string{}
		for node, states := range e.Breakers {
			for i, s := range states {
				s = stateName(s)
				if !slices.Contains(breakerStates, s) {
					return nil, fmt.Errorf("expect.breakers.%s: unknown state %q (want one of %v)", node, states[i], breakerStates)
				}
				states[i] = s
			}
			c.Expect.Breakers[node] = states
		}
	}
	if e.Sinks != nil {
		c.Expect.Sinks = map[string][]any{}
		for sink, nodes := range e.Sinks {
			var want []any
			for i := range nodes {
				v, err := valueOf(&nodes[i])
				if err != nil {
					return nil, err
				}
				want = append(want, v)
			}
			c.Expect.Sinks[sink] = want
		}
	}
	return c, nil
}

// mapValue is the value of key in mapping m, or nil.
func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func nodesOf(ns []*yaml.Node) []yaml.Node {
	out := make([]yaml.Node, len(ns))
	for i, n := range ns {
		out[i] = *n
	}
	return out
}

// bodiesOf encodes inputs: strings are raw bodies, anything else JSON.
func bodiesOf(nodes []yaml.Node) ([][]byte, error) {
	var out [][]byte
	for i := range nodes {
		n := &nodes[i]
		if n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
			out = append(out, []byte(n.Value))
			continue
		}
		v, err := valueOf(n)
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", n.Line, err)
		}
		out = append(out, b)
	}
	return out, nil
}

// valueOf decodes a YAML node into JSON-compatible values.
func valueOf(n *yaml.Node) (any, error) {
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, fmt.Errorf("line %d: %v", n.Line, err)
	}
	return normalize(v)
}

// normalize turns YAML-decoded values into what encoding/json decodes:
// map[string]any, []any, float64, string, bool, nil.
func normalize(v any) (any, error) {
	b, err := json.Marshal(jsonable(v))
	if err != nil {
		return nil, err
	}
	var out any
	return out, json.Unmarshal(b, &out)
}

func jsonable(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = jsonable(e)
		}
	case map[any]any:
		m := map[string]any{}
		for k, e := range v {
			m[fmt.Sprint(k)] = jsonable(e)
		}
		return m
	case []any:
		for i, e := range v {
			v[i] = jsonable(e)
		}
	}
	return v
}

var breakerStates = []string{"closed", "half_open", "open"}

// stateName spells a breaker state as the test files do: half_open, not
// half-open.
func stateName(s string) string { return strings.ReplaceAll(s, "-", "_") }
