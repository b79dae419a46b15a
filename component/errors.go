package component

import "strings"

// FieldError is a constructor's error about one config value, so the DSL
// can point at it rather than at the kind: Path names the value from the
// kind's body (["aggregate", "total"]); Line and Col, when non-zero, are a
// 1-based position inside the value, in characters, as CEL errors give.
// Constructors may return several joined with errors.Join.
type FieldError struct {
	Path      []string
	Line, Col int
	Err       error
}

func (e *FieldError) Error() string { return strings.Join(e.Path, ".") + ": " + e.Err.Error() }

func (e *FieldError) Unwrap() error { return e.Err }
