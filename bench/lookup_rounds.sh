#!/bin/sh
# Interleaved rounds of the lookup benchmark (docs/lookup.md): the baseline
# (map: msg), then (c) cache + coalescing against PostgreSQL and Redis, one
# run of each per round, so the shared machine's load hits all three alike.
# Each result is renamed BenchmarkLookup so benchstat compares the columns.
#
#	bench/lookup_rounds.sh [rounds] [outdir]     # default 10 rounds, /tmp/lkrounds
#	PIPE_LOOKUP_N=100000 bench/lookup_rounds.sh  # fewer messages per run
set -eu
rounds=${1:-10}
out=${2:-/tmp/lkrounds}
mkdir -p "$out"
rm -f "$out"/base.txt "$out"/pg.txt "$out"/redis.txt "$out"/load.txt
go test -c -o "$out"/bench.test ./bench/
one() { # one bench-regexp file
	"$out"/bench.test -test.run '^$' -test.bench "$1" -test.benchtime 1x |
		sed -n 's/^BenchmarkLookup[A-Za-z]*\(\/c_cache_coalesce\)*-/BenchmarkLookup-/p' >>"$out/$2"
}
i=1
while [ "$i" -le "$rounds" ]; do
	echo "round $i load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out"/load.txt
	one 'LookupBaseline$' base.txt
	one 'LookupPostgres/c_' pg.txt
	one 'LookupRedis/c_' redis.txt
	i=$((i + 1))
done
go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da \
	-filter '.unit:(msgs/s OR cpu-µs/msg)' \
	base="$out"/base.txt pg="$out"/pg.txt redis="$out"/redis.txt
