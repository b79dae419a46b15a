package dsl_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/pipe-dsl/pipe/dsl"
)

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(dsl.Schema(nil)))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(dsl.SchemaID, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(dsl.SchemaID)
	if err != nil {
		t.Fatalf("generated schema does not compile: %v", err)
	}
	return s
}

// asJSON converts a YAML document to the JSON value a YAML language server
// validates.
func asJSON(t *testing.T, src []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(src, &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	j, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestEveryExamplePipelineValidatesAgainstTheSchema(t *testing.T) {
	s := compileSchema(t)
	files, _ := filepath.Glob("../pipelines/*.yaml")
	if len(files) == 0 {
		t.Fatal("no example pipelines found")
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.yaml") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(asJSON(t, src)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestTheSchemaRejectsWhatTheCompilerRejects(t *testing.T) {
	s := compileSchema(t)
	for name, src := range map[string]string{
		"unknown top-level key": "name: x\nsorce: {generate: {message: '1'}}\nsink: {drop: {}}\n",
		"unknown kind":          "source: {generate: {message: '1'}}\nsink: {dorp: {}}\n",
		"unknown field":         "source: {generate: {message: '1', cont: 3}}\nsink: {drop: {}}\n",
		"missing required":      "source: {generate: {count: 3}}\nsink: {drop: {}}\n",
		"wrong type":            "source: {generate: {message: '1', count: many}}\nsink: {drop: {}}\n",
		"two kinds in one":      "source: {generate: {message: '1'}, stdin: {}}\nsink: {drop: {}}\n",
	} {
		if err := s.Validate(asJSON(t, []byte(src))); err == nil {
			t.Errorf("%s: schema accepted\n%s", name, src)
		}
		if c, err := dsl.Parse("x.yaml", []byte(src), nil); err == nil {
			if _, err := dsl.Compile(c, nil); err == nil {
				t.Errorf("%s: the compiler accepts it too; the case is not a config error", name)
			}
		}
	}
}
