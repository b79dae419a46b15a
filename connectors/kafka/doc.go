// Package kafka holds the kafka source and sink kinds, built on franz-go:
// a consumer-group source that commits an offset only once every record
// before it in its partition is acknowledged, and a sink that waits for the
// brokers' acks (acks=all, idempotent) before returning.
//
// Import it for its side effect of registering both kinds:
//
//	import _ "github.com/pipe-dsl/pipe/connectors/kafka"
package kafka
