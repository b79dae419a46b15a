package dsl

import (
	"encoding/json"
	"strconv"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/pipeline"
)

// SchemaID is the $id of the schema Schema generates.
const SchemaID = "https://github.com/pipe-dsl/pipe/pipe.schema.json"

// obj is a JSON Schema object under construction.
type obj = map[string]any

// interpolated matches a value that is a ${VAR} reference, which may stand
// for a number, bool, duration or size until interpolation.
var interpolated = obj{"type": "string", "pattern": `\$\{`}

// Schema returns a JSON Schema (draft-07, the dialect yaml-language-server
// reads) of pipeline files using the kinds of reg, for editor completion
// and validation. It is generated from the same specs the compiler decodes
// with, so it cannot drift from what Compile accepts.
func Schema(reg *component.Registry) []byte {
	if reg == nil {
		reg = component.Default
	}
	comp := func(role pipeline.Role, extra obj) obj {
		var kinds []any
		for _, k := range reg.Kinds(role) {
			props := obj{k.Name: kindSchema(k)}
			for key, s := range extra {
				props[key] = s
			}
			kinds = append(kinds, obj{
				"type": "object", "required": []string{k.Name},
				"properties": props, "additionalProperties": false,
				"description": k.Summary,
			})
		}
		return obj{"oneOf": kinds}
	}
	runtime := obj{
		"workers": obj{"type": "integer", "minimum": 1, "description": "Goroutines running this node (default 1)."},
		"ordered": obj{"type": "boolean", "description": "Keep input order across workers."},
		"buffer":  obj{"type": "integer", "minimum": 1, "description": "Capacity of this node's input channel."},
		"retry":   obj{"$ref": "#/definitions/retry"},
		"breaker": obj{"$ref": "#/definitions/breaker"},
		"timeout": obj{"$ref": "#/definitions/timeout"},
	}
	with := func(keys ...string) obj {
		o := obj{}
		for k, v := range runtime {
			o[k] = v
		}
		for _, k := range keys {
			switch k {
			case "name":
				o[k] = obj{"type": "string", "description": "Node name (default: the kind)."}
			case "inputs":
				o[k] = obj{"type": "array", "items": obj{"type": "string"}, "minItems": 1,
					"description": `Nodes feeding this one: "node" or "node.port".`}
			}
		}
		return o
	}
	named := func(c obj) obj {
		return obj{"type": "object", "additionalProperties": c, "propertyNames": obj{"pattern": "^[A-Za-z0-9_-]+$"}}
	}
	linearStage, linearSink := comp(pipeline.RoleStage, with("name")), comp(pipeline.RoleSink, with("name"))
	s := obj{
		"$schema":     "http://json-schema.org/draft-07/schema#",
		"$id":         SchemaID,
		"title":       "pipe pipeline",
		"description": "A pipe pipeline file: a source feeding stages that end in sinks.",
		"type":        "object",
		"properties": obj{
			"name":          obj{"type": "string", "minLength": 1},
			"version":       obj{"enum": []any{1, "1"}},
			"buffer":        obj{"type": "integer", "minimum": 1, "description": "Default channel capacity between nodes."},
			"drain_timeout": obj{"type": "string", "description": "How long a soft stop may take, e.g. 30s."},
			"source":        comp(pipeline.RoleSource, obj{"name": with("name")["name"]}),
			"sources":       named(comp(pipeline.RoleSource, obj{})),
			"stages": obj{"oneOf": []any{
				obj{"type": "array", "items": linearStage},
				named(comp(pipeline.RoleStage, with("inputs"))),
			}},
			"sink":        linearSink,
			"sinks":       named(comp(pipeline.RoleSink, with("inputs"))),
			"dead_letter": linearSink,
			"tracing": obj{"type": "object", "additionalProperties": false, "properties": obj{
				"exporter":     obj{"enum": []any{"otlp", "stdout", "none"}, "description": "Where spans go; default none (or OTEL_TRACES_EXPORTER)."},
				"endpoint":     obj{"type": "string", "description": "OTLP receiver, host:port or URL, e.g. 127.0.0.1:4317."},
				"protocol":     obj{"enum": []any{"grpc", "http"}, "description": "OTLP protocol; default grpc."},
				"sample_ratio": obj{"type": "number", "minimum": 0, "maximum": 1, "description": "Share of source messages traced when they carry no sampled traceparent; default 1."},
				"service_name": obj{"type": "string", "description": "service.name resource attribute; default pipe."},
				"queue_size":   obj{"type": "integer", "minimum": 1, "description": "Spans waiting for export before new ones are dropped; default 2048."},
				"blocking":     obj{"type": "boolean", "description": "Block the pipeline instead of dropping spans when the queue is full."},
			}},
			"metrics": obj{"type": "object", "additionalProperties": false, "properties": obj{
				"http": obj{"type": "string", "description": "Address serving /metrics, /healthz and /readyz, e.g. 127.0.0.1:9464."},
			}},
			"state": obj{"type": "object", "additionalProperties": false, "description": "Durable state shared by stateful stages and replicas (docs/scaling.md).",
				"oneOf": []any{obj{"required": []any{"redis"}}, obj{"required": []any{"postgres"}}},
				"properties": obj{
					"redis": obj{"type": "object", "additionalProperties": false, "required": []any{"url"}, "properties": obj{
						"url":    obj{"type": "string", "description": "redis:// or rediss:// URL; secret: never printed.", "examples": []any{"redis://127.0.0.1:6379/0"}},
						"prefix": obj{"type": "string", "description": "Starts every key pipe writes; default pipe:<name>:."},
					}},
					"postgres": obj{"type": "object", "additionalProperties": false, "required": []any{"dsn"}, "properties": obj{
						"dsn":   obj{"type": "string", "description": "PostgreSQL connection string; secret: never printed.", "examples": []any{"${PG_DSN}"}},
						"table": obj{"type": "string", "description": "Checkpoint table (with _meta and _keys beside it); default pipe_state."},
					}},
					"checkpoint_interval": obj{"type": "string", "description": "How often state and source positions are committed together; default 1s."},
				}},
		},
		"additionalProperties": false,
		"definitions": obj{
			"retry":   retrySchema(),
			"breaker": kindSchema(&breakerSpec),
			"timeout": fieldSchema(timeoutField),
		},
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		panic(err) // only maps, slices and scalars: cannot fail
	}
	return append(b, '\n')
}

// retrySchema is the retry key: a mapping, or max_attempts alone.
func retrySchema() obj {
	body := fieldsSchema(retrySpec.Fields)
	body["description"] = retrySpec.Summary
	for _, f := range retrySpec.Fields {
		if f.Name == retrySpec.Shorthand {
			return obj{"anyOf": []any{fieldSchema(f), body}}
		}
	}
	return body
}

func kindSchema(k *component.Kind) obj {
	body := fieldsSchema(k.Fields)
	body["description"] = k.Summary
	if k.Shorthand != "" {
		return obj{"anyOf": []any{obj{"type": "string", "description": "Shorthand for " + k.Shorthand + "."}, body}}
	}
	return body
}

func fieldsSchema(fields []component.Field) obj {
	props := obj{}
	var required []string
	for _, f := range fields {
		props[f.Name] = fieldSchema(f)
		if f.Required {
			required = append(required, f.Name)
		}
	}
	o := obj{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

func fieldSchema(f component.Field) obj {
	var s obj
	switch f.Type {
	case component.TypeString, component.TypeExpr:
		s = obj{"type": "string"}
		if len(f.Enum) > 0 {
			s["enum"] = f.Enum
		}
	case component.TypeBool:
		s = obj{"anyOf": []any{obj{"type": "boolean"}, interpolated}}
	case component.TypeInt, component.TypeFloat:
		t := obj{"type": "integer"}
		if f.Type == component.TypeFloat {
			t["type"] = "number"
		}
		if f.Min != nil {
			t["minimum"] = *f.Min
		}
		if f.Max != nil {
			t["maximum"] = *f.Max
		}
		s = obj{"anyOf": []any{t, interpolated}}
	case component.TypeDuration:
		s = obj{"type": "string", "pattern": `^(\$\{.*\}|-?[0-9.]+[a-zµ]+([0-9.]+[a-zµ]+)*|0)$`}
	case component.TypeSize:
		s = obj{"anyOf": []any{obj{"type": "integer", "minimum": 0}, obj{"type": "string"}}}
	case component.TypeList:
		item := obj{"type": elemType(f.Elem)}
		if len(f.Fields) > 0 {
			item = fieldsSchema(f.Fields)
		}
		s = obj{"type": "array", "items": item}
	case component.TypeMap:
		s = obj{"type": "object", "additionalProperties": obj{"type": elemType(f.Elem)}}
	case component.TypeObject:
		s = fieldsSchema(f.Fields)
		for _, sf := range f.Fields {
			if sf.Name == f.Shorthand {
				s = obj{"anyOf": []any{fieldSchema(sf), s}}
			}
		}
	default:
		s = obj{}
	}
	desc := f.Description
	if f.Default != "" && !f.Secret {
		desc += " Default: " + f.Default + "."
	}
	s["description"] = desc
	if f.Example != "" {
		s["examples"] = []any{example(f)}
	}
	return s
}

func elemType(t string) string {
	switch t {
	case component.TypeBool:
		return "boolean"
	case component.TypeInt:
		return "integer"
	case component.TypeFloat:
		return "number"
	}
	return "string"
}

// example returns a field's example as the JSON value it stands for.
func example(f component.Field) any {
	switch f.Type {
	case component.TypeInt, component.TypeFloat:
		if n, err := strconv.ParseFloat(f.Example, 64); err == nil {
			return n
		}
	case component.TypeBool:
		if b, err := strconv.ParseBool(f.Example); err == nil {
			return b
		}
	}
	return f.Example
}
