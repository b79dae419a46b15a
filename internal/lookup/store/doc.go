// Package store holds the lookup.Store implementations of the lookup
// stage: PostgreSQL (one ANY($1) query per group), Redis (one MGET or one
// pipeline of HGETALLs per group) and HTTP (one request per key, a group's
// requests in parallel). Each opens its connection pool on first use,
// bounded by its max_conns, and closes it in Close; none puts a DSN, URL
// or password in an error.
package store

import (
	"strconv"

	"github.com/pipe-dsl/pipe/expr"
)

// decode turns a stored value into the JSON value a message carries: JSON
// text as decoded JSON, anything else as a string.
func decode(s string) any {
	if v, err := expr.DecodeJSON([]byte(s)); err == nil {
		return v
	}
	return s
}

// KeyText is the text form of a lookup key, by which the cache and a round
// trip's result identify it: integers in decimal, strings as they are,
// anything else as JSON.
func KeyText(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case uint64:
		return strconv.FormatUint(v, 10), nil
	}
	b, err := expr.EncodeJSON(v)
	return string(b), err
}
