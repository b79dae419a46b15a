#!/usr/bin/env bash
# Fuzz every target of every package for FUZZTIME each.
#
# Go 1.26's fuzz coordinator can report a bare "context deadline exceeded"
# when -fuzztime expires while a worker is mid-call on a loaded machine
# (golang/go#75804, fixed in Go 1.27). That failure writes no failing input.
# Such a run is tried once more; any other failure, or one that wrote a
# failing input, fails at once.
set -uo pipefail
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-20s}

fuzz_once() { # pkg target log
	$GO test -run '^$' -fuzz "^$2\$" -fuzztime "$FUZZTIME" -fuzzminimizetime 1s "$1" 2>&1 | tee "$3"
	return "${PIPESTATUS[0]}"
}

deadline_flake() { # log
	grep -q 'context deadline exceeded' "$1" &&
		! grep -qE 'Failing input written|panic:|_test\.go:[0-9]+:' "$1"
}

log=$(mktemp)
trap 'rm -f "$log"' EXIT
for p in $($GO list ./...); do
	for t in $($GO test -list '^Fuzz' "$p" | grep '^Fuzz'); do
		echo "fuzz $p $t"
		fuzz_once "$p" "$t" "$log" && continue
		if deadline_flake "$log"; then
			echo "fuzz $p $t: the fuzz coordinator's deadline race (golang/go#75804), no failing input: once more"
			fuzz_once "$p" "$t" "$log" && continue
		fi
		exit 1
	done
done
