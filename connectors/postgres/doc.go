// Package postgres holds the postgres source and sink kinds: a sink that
// inserts or upserts rows in one transaction per batch, and a source that
// polls a query by an increasing cursor column and persists the cursor once
// every row up to it is acknowledged.
//
// Import it for its side effect of registering both kinds:
//
//	import _ "github.com/pipe-dsl/pipe/connectors/postgres"
package postgres
