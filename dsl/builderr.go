package dsl

import (
	"errors"

	"gopkg.in/yaml.v3"

	"github.com/pipe-dsl/pipe/component"
)

// buildErrors reports a constructor's error for node n: each
// component.FieldError at the value it names (and the position inside it),
// anything else at n's kind.
func (d *decoder) buildErrors(n *Node, err error) {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			d.buildErrors(n, e)
		}
		return
	}
	var fe *component.FieldError
	if !errors.As(err, &fe) {
		d.errs.Add(n.KindPos, "%s: %v", n.Kind, err)
		return
	}
	v := valueAt(n.Body, fe.Path)
	if v == nil {
		d.errs.Add(n.KindPos, "%s: %v", n.Kind, err)
		return
	}
	pos := NodePos(d.c.File, v)
	if fe.Line > 0 && v.Kind == yaml.ScalarNode {
		pos = ExprPos(d.c.File, d.c.Src, v, fe.Line, fe.Col)
	}
	d.errs.Add(pos, "%s: %v", n.Kind, err)
}

// valueAt follows mapping keys from body, or returns nil.
func valueAt(body *yaml.Node, path []string) *yaml.Node {
	v := body
	for _, key := range path {
		if v == nil || v.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(v.Content); i += 2 {
			if v.Content[i].Value == key {
				next = v.Content[i+1]
			}
		}
		v = next
	}
	return v
}
