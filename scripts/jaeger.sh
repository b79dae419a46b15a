#!/usr/bin/env bash
# Runs Jaeger v1.76.0 (the v2 all-in-one) on 127.0.0.1 with in-memory
# storage and the config in scripts/jaeger.yaml.
#
#   scripts/jaeger.sh          build if needed, run in the foreground
#   scripts/jaeger.sh start    build if needed, run in the background, wait until the query API answers
#   scripts/jaeger.sh stop     stop the background one
#
# `go install github.com/jaegertracing/jaeger/cmd/jaeger@v1.76.0` refuses the
# module (its go.mod has replace directives), so the script downloads the
# module through the Go module proxy and builds it in a temporary copy,
# outside pipe's go.mod. The first build takes several minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=v1.76.0
BIN=$PWD/bin/jaeger
PIDFILE=$PWD/bin/jaeger.pid
LOG=$PWD/bin/jaeger.log

build() {
	[ -x "$BIN" ] && return
	mkdir -p "$(dirname "$BIN")"
	echo "building jaeger $VERSION (first time only, several minutes)..." >&2
	local tmp dir
	tmp=$(mktemp -d)
	trap 'chmod -R u+w "$tmp"; rm -rf "$tmp"' RETURN
	dir=$(cd "$tmp" && GOFLAGS=-mod=mod go mod download -json "github.com/jaegertracing/jaeger@$VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	cp -r "$dir" "$tmp/src"
	chmod -R u+w "$tmp/src"
	(cd "$tmp/src" && GOFLAGS=-mod=mod go build -o "$BIN" ./cmd/jaeger)
}

ready() {
	curl -fsS -o /dev/null "http://127.0.0.1:16686/api/services" 2>/dev/null
}

case "${1:-run}" in
run)
	build
	exec "$BIN" --config "$PWD/scripts/jaeger.yaml"
	;;
start)
	build
	if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
		echo "jaeger already running (pid $(cat "$PIDFILE"))" >&2
	else
		"$BIN" --config "$PWD/scripts/jaeger.yaml" >"$LOG" 2>&1 &
		echo $! >"$PIDFILE"
	fi
	for _ in $(seq 100); do
		if ready; then
			echo "jaeger ready: UI http://127.0.0.1:16686, OTLP 127.0.0.1:4317 (grpc) / 4318 (http)" >&2
			exit 0
		fi
		sleep 0.2
	done
	echo "jaeger did not become ready; see $LOG" >&2
	exit 1
	;;
stop)
	if [ -f "$PIDFILE" ]; then
		kill "$(cat "$PIDFILE")" 2>/dev/null || true
		rm -f "$PIDFILE"
	fi
	;;
*)
	echo "usage: $0 [run|start|stop]" >&2
	exit 2
	;;
esac
