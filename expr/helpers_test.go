package expr

import (
	"encoding/json"
	"os"
	"reflect"
	"strconv"

	"github.com/google/cel-go/common/types"
)

var (
	trueVal      = types.True
	mapStringAny = reflect.TypeFor[map[string]any]()
)

func readMessage() ([]byte, error) { return os.ReadFile("testdata/message.json") }

func formatInt(n int64) string { return strconv.FormatInt(n, 10) }

func sameInt(n json.Number, v int64) bool {
	i, err := n.Int64()
	return err == nil && i == v
}

func parseUintNumber(n json.Number) (uint64, error) { return strconv.ParseUint(n.String(), 10, 64) }
