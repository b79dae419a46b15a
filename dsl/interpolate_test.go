package dsl

import (
	"fmt"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const interpSecret = "hunter2-s3cr3t"

func interpEnv(name string) (string, bool) {
	v, ok := map[string]string{
		"BROKER": "kafka:9092",
		"SECRET": interpSecret,
		"N":      "5",
		"HOME":   "/root",
		"INJ":    "a\nb: c\n- d",
		"EMPTY":  "",
	}[name]
	return v, ok
}

// interpParse parses src and returns its root mapping, failing t on error.
func interpParse(t *testing.T, src string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatalf("yaml.Unmarshal: %v", err)
	}
	return doc.Content[0]
}

// interpValue returns the value under key in mapping m.
func interpValue(t *testing.T, m *yaml.Node, key string) *yaml.Node {
	t.Helper()
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	t.Fatalf("no key %q", key)
	return nil
}

func TestInterpolate(t *testing.T) {
	root := interpParse(t, `url: ${BROKER}/topic
password: ${SECRET}
count: ${N}
quoted: "${N}"
tagged: !!str ${N}
flag: ${FLAG:-true}
def: ${NOPE:-fall back}
empty: ${NOPE:-}
set_empty: x${EMPTY}y
escaped: $${HOME} and $$ and ${HOME}
inj: ${INJ}
list:
  - ${N}
key${N}: v
block: |
  first ${N}
plain: no references $ here
anchored: &a ${HOME}
alias: *a
`)
	fromEnv, errs := Interpolate("p.yaml", root, interpEnv)
	if len(errs) > 0 {
		t.Fatalf("Interpolate() errors:\n%v", errs)
	}
	for _, tc := range []struct {
		key, value, tag string
		fromEnv         bool
	}{
		{"url", "kafka:9092/topic", "!!str", true},
		{"password", interpSecret, "!!str", true},
		{"count", "5", "!!int", true},
		{"quoted", "5", "!!str", true},
		{"tagged", "5", "!!str", true},
		{"flag", "true", "!!bool", false},
		{"def", "fall back", "!!str", false},
		{"empty", "", "!!null", false},
		{"set_empty", "xy", "!!str", true},
		{"escaped", "${HOME} and $$ and /root", "!!str", true},
		{"inj", "a\nb: c\n- d", "!!str", true},
		{"block", "first 5\n", "!!str", true},
		{"plain", "no references $ here", "!!str", false},
		{"anchored", "/root", "!!str", true},
	} {
		n := interpValue(t, root, tc.key)
		if n.Kind != yaml.ScalarNode || n.Value != tc.value || n.Tag != tc.tag || fromEnv[n] != tc.fromEnv {
			t.Errorf("Interpolate(): %s = %v %s %q (from env %v), want scalar %s %q (from env %v)",
				tc.key, n.Kind, n.Tag, n.Value, fromEnv[n], tc.tag, tc.value, tc.fromEnv)
		}
	}
	if n := interpValue(t, root, "alias"); n.Alias.Value != "/root" {
		t.Errorf("Interpolate(): alias = %q, want %q", n.Alias.Value, "/root")
	}
	if n := interpValue(t, root, "list").Content[0]; n.Value != "5" || n.Tag != "!!int" {
		t.Errorf("Interpolate(): list[0] = %s %q, want !!int \"5\"", n.Tag, n.Value)
	}
	// Keys are not interpolated, and the injected text made no new keys.
	interpValue(t, root, "key${N}")
	if len(root.Content) != 34 {
		t.Errorf("Interpolate(): root has %d keys, want 17", len(root.Content)/2)
	}
}

func TestInterpolateErrors(t *testing.T) {
	src := `a: ${MISSING1}
b: "x ${MISSING2} y ${MISSING3}"
c: ${SECRET} ${BAD NAME}
d: ${UNCLOSED
e: ${}
f: ${SECRET:default}
g: ${1X}
h: |
  ${MISSING4}
i: ${A:-${B}}
j: 'it''s ${MISSING5}'
k: ${N} ${MISSING6:-ok} ${MISSING7}
`
	root := interpParse(t, src)
	fromEnv, errs := Interpolate("p.yaml", root, interpEnv)
	want := strings.Join([]string{
		`p.yaml:1:4: environment variable MISSING1 is not set (set it, or give a default: ${MISSING1:-value})`,
		`p.yaml:2:7: environment variable MISSING2 is not set (set it, or give a default: ${MISSING2:-value})`,
		`p.yaml:2:21: environment variable MISSING3 is not set (set it, or give a default: ${MISSING3:-value})`,
		`p.yaml:3:14: invalid variable name "BAD NAME" in "${BAD NAME}": use letters, digits and underscores, not starting with a digit`,
		`p.yaml:4:4: unclosed "${" (write "$${" for a literal "${")`,
		`p.yaml:5:4: empty variable name in "${}"`,
		`p.yaml:6:4: unsupported reference "${SECRET:default}": only ${SECRET} and ${SECRET:-default} are supported`,
		`p.yaml:7:4: invalid variable name "1X" in "${1X}": use letters, digits and underscores, not starting with a digit`,
		`p.yaml:8:4: environment variable MISSING4 is not set (set it, or give a default: ${MISSING4:-value})`,
		`p.yaml:10:4: nested reference in the default of "${A:-${B}}" is not supported`,
		`p.yaml:11:11: environment variable MISSING5 is not set (set it, or give a default: ${MISSING5:-value})`,
		`p.yaml:12:25: environment variable MISSING7 is not set (set it, or give a default: ${MISSING7:-value})`,
	}, "\n")
	if got := errs.Error(); got != want {
		t.Errorf("Interpolate() errors =\n%s\nwant\n%s", got, want)
	}
	var b strings.Builder
	errs.Render(&b, map[string][]byte{"p.yaml": []byte(src)})
	if strings.Contains(b.String(), interpSecret) {
		t.Errorf("Interpolate() errors reveal a secret:\n%s", b.String())
	}
	if len(fromEnv) != 0 {
		t.Errorf("Interpolate() fromEnv has %d nodes, want 0: scalars with errors are left alone", len(fromEnv))
	}
	if n := interpValue(t, root, "c"); n.Value != "${SECRET} ${BAD NAME}" {
		t.Errorf("Interpolate(): c = %q, want it unchanged", n.Value)
	}
}

func ExampleInterpolate() {
	var doc yaml.Node
	_ = yaml.Unmarshal([]byte("brokers: ${BROKERS}\nretries: ${RETRIES:-3}\ntoken: ${TOKEN}\n"), &doc)
	env := map[string]string{"BROKERS": "kafka:9092"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }

	_, errs := Interpolate("pipeline.yaml", doc.Content[0], lookup)
	fmt.Println(errs)
	m := doc.Content[0]
	fmt.Println(m.Content[1].Value, m.Content[3].Tag, m.Content[3].Value)
	// Output:
	// pipeline.yaml:3:8: environment variable TOKEN is not set (set it, or give a default: ${TOKEN:-value})
	// kafka:9092 !!int 3
}
