#!/bin/sh
# Measures how exactly pipe paces: a throttle (token bucket and sliding
# window) and generate's interval, each for PACING_SECS (default 5) seconds
# on the real clock, against the limit's promise. Three parts:
#   1. BenchmarkPacing (stages): the throttle stage called in a loop, rates
#      1/s to 1,000,000/s, bursts 1 to 1000, several windows;
#   2. BenchmarkGeneratePacing (connectors): generate's interval alone;
#   3. `pipe run` end to end: generate -> throttle -> drop, timed by the
#      run's own "finished in" line (which includes start-up, a few ms),
#      ROUNDS times (default 3) each; the row shows every run and the
#      median's off %, with the load average before the first.
# expected is (n - burst)/rate for a bucket, (n - limit)/(limit/window) for a
# saturated window, (n - 1)*interval for generate; off % is (actual -
# expected)/expected. excess (part 1) is the most messages ahead of the
# limit at any admission on the real clock: a late wake-up's catch-up;
# loop M/s is how fast the same loop runs against a limit it never meets,
# just before (near the rate, the consumer and not the throttle sets the pace).
# Output: the tables on stdout and the raw lines in bench-pacing.out.
set -eu
SECS=${PACING_SECS:-5}
ROUNDS=${ROUNDS:-3}
export PACING_SECS=$SECS
: > bench-pacing.out

table() { # benchmark lines -> markdown rows
	awk '/^Benchmark/ {
		name = $1; sub(/^Benchmark[A-Za-z]*\//, "", name); sub(/-[0-9]+$/, "", name)
		for (i = 3; i < NF; i++) v[$(i + 1)] = $i
		ex = (("excess" in v) ? sprintf(" %.1f | %.2f |", v["excess"], v["loop_Mps"]) : "")
		printf "| %s | %.3f | %.3f | %+.2f |%s\n", name, v["expected_s"], v["actual_s"], v["%off"], ex
		delete v
	}'
}

echo "## throttle stage (go test -bench Pacing ./stages/), PACING_SECS=$SECS"
echo "| case | expected s | actual s | off % | excess | loop M/s |"
echo "|---|---:|---:|---:|---:|---:|"
go test -run '^$' -bench 'Pacing' -benchtime 1x -timeout 30m ./stages/ | tee -a bench-pacing.out | table
echo
echo "## generate interval (go test -bench GeneratePacing ./connectors/)"
echo "| case | expected s | actual s | off % |"
echo "|---|---:|---:|---:|"
go test -run '^$' -bench 'GeneratePacing' -benchtime 1x -timeout 30m ./connectors/ | tee -a bench-pacing.out | table
echo

# Part 3: real `pipe run`.
make -s build
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
run() { # name expected_s yaml-body
	printf 'name: pacing\n%s\n' "$3" > "$dir/p.yaml"
	load=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo '?')
	all=""
	i=0
	while [ "$i" -lt "$ROUNDS" ]; do
		# "finished in 991ms", "5.002s" or "1m2.5s" (a Go duration) -> seconds
		secs=$(./bin/pipe run --log-level error "$dir/p.yaml" 2>&1 | sed -n 's/^finished in //p' | awk '
			/ms$/ { sub(/ms$/, ""); print $0 / 1000; next }
			/m/ { split($0, p, "m"); sub(/s$/, "", p[2]); print p[1] * 60 + p[2]; next }
			{ sub(/s$/, ""); print $0 }')
		echo "pipe-run $1 expected=$2 actual=$secs load=$load" >> bench-pacing.out
		all="$all $secs"
		i=$((i + 1))
	done
	echo "$all" | tr ' ' '\n' | grep . | sort -n | awk -v n="$1" -v e="$2" -v l="$load" '
		{ v[NR] = $1; s = s (NR > 1 ? ", " : "") sprintf("%.3f", $1) }
		END { m = v[int((NR + 1) / 2)]; printf "| %s | %.3f | %s | %+.2f | %s |\n", n, e, s, 100 * (m - e) / e, l }'
}
n=$(awk -v s="$SECS" 'BEGIN { print int(10000 * s) }')
echo "## pipe run: generate -> throttle -> drop ($n messages at 10,000/s unless noted), $ROUNDS runs each"
echo "| case | expected s | actual s (sorted) | median off % | load |"
echo "|---|---:|---:|---:|---:|"
for burst in 1 100 1000; do
	run "throttle rate=10000 burst=$burst" "$(awk -v n="$n" -v b="$burst" 'BEGIN { print (n - b) / 10000 }')" "
source: {generate: {count: $n, message: '{\"n\": seq}'}}
stages: [{throttle: {rate: 10000, burst: $burst}}]
sink: {drop: {}}"
done
run "throttle sliding_window limit=100 window=10ms" "$(awk -v n="$n" 'BEGIN { print (n - 100) / 10000 }')" "
source: {generate: {count: $n, message: '{\"n\": seq}'}}
stages: [{throttle: {algorithm: sliding_window, limit: 100, window: 10ms}}]
sink: {drop: {}}"
g=$(awk -v s="$SECS" 'BEGIN { print int(2000 * s) + 1 }')
run "generate interval=500us ($g messages)" "$(awk -v g="$g" 'BEGIN { print (g - 1) / 2000 }')" "
source: {generate: {count: $g, interval: 500us, message: '{\"n\": seq}'}}
sink: {drop: {}}"
