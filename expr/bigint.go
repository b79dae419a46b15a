package expr

import (
	"database/sql/driver"
	"encoding/json"
	"strconv"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
)

// BigInt is an integer literal beyond the int64 and uint64 ranges, as
// DecodeJSON returns it, such as -9223372036854775809. CEL reads it as the
// nearest double; EncodeJSON writes its original text, so a value that no
// expression touches passes through byte for byte.
type BigInt string

// Float returns the double nearest to b.
func (b BigInt) Float() float64 {
	f, _ := strconv.ParseFloat(string(b), 64) // DecodeJSON checked the range
	return f
}

var (
	_ json.Marshaler = BigInt("")
	_ driver.Valuer  = BigInt("")
)

// MarshalJSON writes b's text, a JSON number, as EncodeJSON does.
func (b BigInt) MarshalJSON() ([]byte, error) { return []byte(b), nil }

// Value gives database drivers b's text, which SQL numeric types parse
// without losing a digit.
func (b BigInt) Value() (driver.Value, error) { return string(b), nil }

// jsonAdapter converts decoded JSON to CEL values as cel-go's default
// adapter does, and a BigInt to a double. It wraps objects and arrays
// itself so that their elements are converted by it too.
type jsonAdapter struct{}

var _ types.Adapter = jsonAdapter{}

func (a jsonAdapter) NativeToValue(v any) ref.Val {
	switch v := v.(type) {
	case map[string]any:
		return types.NewStringInterfaceMap(a, v)
	case []any:
		return types.NewDynamicList(a, v)
	case BigInt:
		return types.Double(v.Float())
	}
	return types.DefaultTypeAdapter.NativeToValue(v)
}

// celValue converts a decoded value for the activation.
func celValue(v any) any {
	switch v.(type) {
	case map[string]any, []any, BigInt:
		return jsonAdapter{}.NativeToValue(v)
	}
	return v
}
