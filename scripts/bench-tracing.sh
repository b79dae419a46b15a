#!/bin/sh
# Measures the cost of tracing: BenchmarkThroughput and BenchmarkQuickstart
# (tracing/bench_test.go) with tracing off, at 1% and at 100% sampling.
# The cases run interleaved, round after round, so a burst of load on the
# machine hits every case alike instead of one; benchstat then compares
# medians. ROUNDS (default 10) and N (messages per run, default 300000)
# trade time for confidence. Output: bench-tracing.out.
set -eu
ROUNDS=${ROUNDS:-10}
N=${N:-300000}
BENCHSTAT=${BENCHSTAT:-go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da}
bin=$(mktemp -d)/tracing.test
trap 'rm -rf "$(dirname "$bin")"' EXIT
go test -c -o "$bin" ./tracing/
: > bench-tracing.out
cases=${CASES:-'sample=off sample=0.01/proc=batcher sample=0.01/proc=sdk sample=1/proc=batcher'}
i=0
while [ "$i" -lt "$ROUNDS" ]; do
	for b in Throughput Quickstart; do
		for c in $cases; do
			"$bin" -test.run '^$' -test.bench "^Benchmark$b/$c\$" -test.benchtime "${N}x" -test.benchmem |
				grep '^Benchmark' >> bench-tracing.out
		done
	done
	i=$((i + 1))
done
$BENCHSTAT -col /sample,/proc bench-tracing.out
