// Package stages holds the built-in stage kinds, one file per kind, each
// registered into component.Default from init.
package stages
