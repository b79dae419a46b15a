#!/usr/bin/env bash
# Throughput of a map node for 4s, without and with a stalled tap on it
# (pipe tap piped into a sleep that never reads): the tap must not slow it.
# Usage: go build -o bin/pipe ./cmd/pipe && scripts/bench-tap.sh
set -u
cd "$(dirname "$0")/.."
B=./bin/pipe
F=$(mktemp --suffix .yaml)
trap 'rm -f "$F"' EXIT
cat > "$F" <<'YAML'
name: fast
source: {generate: {count: 0, message: '{"id": seq}'}}
stages:
  - map: {set: {even: msg.id % 2 == 0}}
sink: {drop: {}}
YAML
rate() { # port, tap?
  $B run --quiet --http 127.0.0.1:$1 $F 2>/dev/null & pid=$!
  sleep 1
  if [ "$2" = tap ]; then ($B tap --addr 127.0.0.1:$1 map | sleep 30) 2>/dev/null & tp=$!; sleep 0.5; fi
  a=$(curl -s 127.0.0.1:$1/api/v1/stats | python3 -c 'import json,sys; print([n for n in json.load(sys.stdin)["nodes"] if n["name"]=="map"][0]["out"])')
  sleep 4
  b=$(curl -s 127.0.0.1:$1/api/v1/stats | python3 -c 'import json,sys; print([n for n in json.load(sys.stdin)["nodes"] if n["name"]=="map"][0]["out"])')
  kill $pid; wait $pid 2>/dev/null
  [ "$2" = tap ] && { kill $tp 2>/dev/null; pkill -P $tp 2>/dev/null; }
  echo "$2 $(( (b-a)/4 )) msgs/s"
}
for i in 1 2 3; do rate 947$i none; rate 948$i tap; done
