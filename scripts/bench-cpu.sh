#!/bin/sh
# CPU per message of `pipe run` on the NDJSON-file workload of issue 15,
# this tree against a base commit, in interleaved rounds on the same machine.
#
#   scripts/bench-cpu.sh            # base = BASE (default: the commit before issue 15 work)
#   BASE=<commit> N=1000000 ROUNDS=7 scripts/bench-cpu.sh
#
# Workload: N (default 1,000,000) JSON orders of about SIZE bytes (1 KiB by
# default; SIZE=small gives ~60-byte messages), one per line; every second one
# has level "error". Pipeline: file source -> filter `msg.level == "error"` ->
# map setting one field (cents) -> file sink. Both binaries are built from
# source (the base from `git archive`, outside the worktree) and run
# alternately, ROUNDS times each; user+sys CPU comes from /usr/bin/time.
# Output: one line per run (user s, sys s, wall s, max RSS KiB), then the
# medians, µs per input message and the ratio this/base, and, with BENCHSTAT
# set (make bench-cpu sets it), benchstat's comparison with its p-value.
# CALLGRIND=1 counts instructions per message instead (load-independent).
# The machine may be shared: compare only the ratio of the same run, and
# prefer more rounds when the load average is high.
set -eu
BASE=${BASE:-0040c2a76a1802c4ac2af9a920b69f3b74aaf360}
N=${N:-1000000}
ROUNDS=${ROUNDS:-5}
SIZE=${SIZE:-1k}
WORK=${WORK:-$(mktemp -d /tmp/bench-cpu.XXXXXX)}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

mkdir -p "$WORK/base"
if [ ! -x "$WORK/pipe-base" ]; then
	(cd "$ROOT" && git archive "$BASE") | tar -x -C "$WORK/base"
	(cd "$WORK/base" && go build -o "$WORK/pipe-base" ./cmd/pipe)
fi
(cd "$ROOT" && go build -o "$WORK/pipe-this" ./cmd/pipe)

gen() { # $1 = messages, $2 = file
	[ -s "$2" ] && return
	awk -v n="$1" -v size="$SIZE" 'BEGIN {
		pad = "Please leave the parcel with the neighbour at number fourteen if nobody answers the door; the dog is friendly. Call ahead on weekdays after five. Gift wrap requested, no invoice in the box, thank you!"
		for (i = 0; i < n; i++) {
			level = (i % 2 == 0) ? "error" : "info"
			if (size == "small") {
				printf "{\"id\":%d,\"level\":\"%s\",\"amount\":%.1f,\"currency\":\"EUR\"}\n", i, level, i * 1.5
				continue
			}
			printf "{\"id\":%d,\"level\":\"%s\",\"amount\":%.1f,\"currency\":\"EUR\",", i, level, i * 1.5
			printf "\"customer\":{\"id\":\"c-%d\",\"name\":\"Customer %d\",\"tier\":\"gold\",\"email\":\"customer%d@example.com\",\"since\":\"2019-04-01\"},", i % 97, i % 97, i % 97
			printf "\"shipping\":{\"street\":\"12 Long Street\",\"city\":\"Springfield\",\"zip\":\"49007\",\"country\":\"US\",\"instructions\":\"deliver to the back door, ring twice\"},"
			printf "\"items\":[{\"sku\":\"A-%d\",\"qty\":%d,\"price\":12.5,\"title\":\"Widget, large\"},{\"sku\":\"B-%d\",\"qty\":1,\"price\":3.25,\"title\":\"Gadget\"},", i, i % 5 + 1, i
			printf "{\"sku\":\"C-%d\",\"qty\":2,\"price\":7,\"title\":\"Sprocket set\"},{\"sku\":\"D-%d\",\"qty\":1,\"price\":99.99,\"title\":\"Deluxe doohickey\"}],", i, i
			printf "\"tags\":[\"priority\",\"gift\",\"fragile\",\"repeat-customer\"],\"note\":\"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\","
			printf "\"created\":\"2026-11-27T04:00:00Z\",\"updated\":\"2026-11-27T04:05:00Z\",\"source\":\"web\",\"version\":3,\"comment\":\"%s\"}\n", pad
		}
	}' > "$2"
}
IN="$WORK/in-$SIZE-$N.ndjson"
gen "$N" "$IN"
pipeline() { # $1 = input file -> $WORK/pipeline.yaml
	cat > "$WORK/pipeline.yaml" <<YAML
name: bench-cpu
source: {file: {path: $1}}
stages:
  - filter: msg.level == "error"
  - map: {set: {cents: 'int(msg.amount * 100.0)'}}
sink: {file: {path: $WORK/out.ndjson, append: false}}
YAML
}
pipeline "$IN"

if [ "${CALLGRIND:-}" ]; then
	# Instructions per message, independent of the load: each binary once
	# under callgrind on N messages and on 1, the difference over N-1
	# (asynchronous preemption off: callgrind fails on its signals; one P,
	# so that idle spinning of the scheduler is not counted as work).
	gen 1 "$WORK/in-$SIZE-1.ndjson"
	for b in base this; do
		for f in "$IN" "$WORK/in-$SIZE-1.ndjson"; do
			pipeline "$f"
			GOMAXPROCS=1 GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out" "$WORK/pipe-$b" run -quiet "$WORK/pipeline.yaml" > /dev/null 2> "$WORK/cg.log"
			grep -h '^summary:' "$WORK/cg.out" | cut -d' ' -f2
		done | { read -r big; read -r one; echo "$b $big $one"; }
	done | awk -v n="$N" '{ ir[$1] = ($2 - $3) / (n - 1); printf "%s: %.0f instructions per message\n", $1, ir[$1] }
		END { printf "ratio this/base: instructions %.3f\n", ir["this"] / ir["base"] }'
	exit 0
fi

echo "# $(date -u +%FT%TZ) N=$N SIZE=$SIZE ($(($(wc -c < "$IN") / N)) bytes/msg) ROUNDS=$ROUNDS base=$BASE load: $(cut -d' ' -f1-3 /proc/loadavg)"
want=$(( (N + 1) / 2 ))
run() { # $1 = base|this -> "user sys wall maxrss_kb"
	/usr/bin/time -f '%U %S %e %M' -o "$WORK/time" "$WORK/pipe-$1" run -quiet "$WORK/pipeline.yaml" > /dev/null 2> "$WORK/log"
	got=$(wc -l < "$WORK/out.ndjson")
	if [ "$got" -ne "$want" ]; then
		echo "$1: wrote $got lines, want $want" >&2
		cat "$WORK/log" >&2
		exit 1
	fi
	cat "$WORK/time"
}
: > "$WORK/results"
: > "$WORK/base.bench"
: > "$WORK/this.bench"
i=0
while [ $i -lt "$ROUNDS" ]; do
	for b in base this; do
		set -- $(run $b)
		echo "$b $1 $2 $3 $4" | tee -a "$WORK/results"
		# The same run in Go benchmark format, for benchstat.
		echo "BenchmarkFileCPU/size=$SIZE $N $(echo "$1 $2 $3 $4" | awk -v n="$N" '{ printf "%.1f cpu-ns/msg %.1f wall-ns/msg %d maxrss-KiB", ($1 + $2) * 1e9 / n, $3 * 1e9 / n, $4 }')" >> "$WORK/$b.bench"
	done
	i=$((i + 1))
done
awk -v n="$N" '
function median(a, k,   i, j, t) {
	for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
	return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
}
{ k[$1]++; cpu[$1, k[$1]] = $2 + $3; wall[$1, k[$1]] = $4; rss[$1, k[$1]] = $5 }
END {
	for (b in k) {
		for (i = 1; i <= k[b]; i++) { c[i] = cpu[b, i]; w[i] = wall[b, i]; r[i] = rss[b, i] }
		mc[b] = median(c, k[b]); mw[b] = median(w, k[b]); mr[b] = median(r, k[b])
		printf "%s: median cpu %.2fs (%.2f us/msg), wall %.2fs, maxrss %d KiB\n", b, mc[b], mc[b] * 1e6 / n, mw[b], mr[b]
	}
	printf "ratio this/base: cpu %.3f, wall %.3f, maxrss %.2f\n", mc["this"] / mc["base"], mw["this"] / mw["base"], mr["this"] / mr["base"]
}' "$WORK/results"
if [ "${BENCHSTAT:-}" ]; then
	$BENCHSTAT "$WORK/base.bench" "$WORK/this.bench"
fi
echo "# work dir: $WORK"
