// Package soak runs a realistic pipeline for minutes and checks that memory
// and goroutines stay flat and that every message is accounted for. The test
// is behind the build tag soak:
//
//	make soak             # 60s
//	make soak SOAK=10m
package soak
