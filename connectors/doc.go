// Package connectors holds the built-in source and sink kinds, one file per
// kind, each registered into component.Default from init.
package connectors
