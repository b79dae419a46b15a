# Targets CI and the README use. `make test` is the README's test command.
GO      ?= go
PKGS    ?= ./...
FUZZTIME ?= 20s
SOAK    ?= 60s

.PHONY: all build test vet validate fmt-check docs bench bench-cpu bench-pacing bench-memory fuzz hostile soak quickstart scaleout crash clean jaeger e2e-jaeger bench-tracing

all: build

build:
	$(GO) build -o bin/pipe ./cmd/pipe

# The README's test command: every test, with the race detector.
test:
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

vet:
	$(GO) vet $(PKGS)

# Validate every example pipeline and run its tests (*_test.yaml) with the CLI.
# http_to_amqp.yaml requires INGEST_TOKEN (an empty token is refused).
validate: build
	INGEST_TOKEN=validate-only ./bin/pipe validate $$(ls pipelines/*.yaml | grep -v '_test\.yaml$$')
	./bin/pipe test pipelines/*_test.yaml

# The example pipelines are in pipe fmt's canonical form (pipe fmt -w
# pipelines/ fixes them).
fmt-check: build
	@out=$$(./bin/pipe fmt -l pipelines/) && test -z "$$out" || { echo "pipe fmt needed (run ./bin/pipe fmt -w pipelines/):"; echo "$$out"; exit 1; }

# The kinds reference and JSON Schema, generated from the registry; a test
# fails when the checked-in copies are stale.
docs:
	$(GO) run ./cmd/pipe kinds --markdown > docs/kinds.md
	$(GO) run ./cmd/pipe schema > docs/pipe.schema.json

quickstart:
	$(GO) run ./cmd/pipe run pipelines/quickstart.yaml

# Throughput of the compiled quickstart shape against a hand-written loop,
# compared by benchstat; bench-memory runs 10M messages and reports the heap.
BENCHSTAT ?= $(GO) run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
bench:
	$(GO) test -run '^$$' -bench 'Quickstart$$' -benchmem -count 6 ./bench/ | tee bench.out
	$(BENCHSTAT) -col /impl bench.out

bench-memory:
	$(GO) test -run '^$$' -bench 'QuickstartMemory' -benchtime 1x ./bench/

# CPU per message of `pipe run` on the NDJSON-file workload (file -> filter
# -> map -> file, 1M ~1 KiB messages), this tree against BASE, interleaved
# rounds (docs/performance.md). BASE, N, ROUNDS, SIZE=small are passed on.
bench-cpu:
	BENCHSTAT='$(BENCHSTAT)' scripts/bench-cpu.sh

# How exactly throttle and generate pace: expected vs actual time at rates
# from 1/s to 1,000,000/s, stage alone and through `pipe run`
# (docs/flow-control.md). PACING_SECS (default 5) per case.
bench-pacing:
	scripts/bench-pacing.sh

# Throughput with tracing off, at 1% and at 100% sampling (docs/observability.md).
bench-tracing:
	BENCHSTAT='$(BENCHSTAT)' scripts/bench-tracing.sh

# Jaeger (v2 all-in-one, in-memory) on 127.0.0.1: OTLP 4317/4318, UI and API 16686.
# Built from source into bin/ on first use (several minutes).
jaeger:
	scripts/jaeger.sh

# Export traces from `pipe run` to a background Jaeger and check the span
# trees through its query API.
e2e-jaeger: build
	scripts/jaeger.sh start
	$(GO) test -tags e2e -count=1 -run 'Jaeger' -v ./tracing/; status=$$?; scripts/jaeger.sh stop; exit $$status

# Each fuzz target briefly (CI); set FUZZTIME=10m for a longer run.
fuzz:
	GO='$(GO)' FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

# Hostile configs must each be rejected within a time bound, and hostile
# messages stopped by the CEL limits within one; the bounds are checked
# here, in benchmarks, not in timed tests.
hostile:
	$(GO) test -run '^$$' -bench 'Hostile' -benchtime 3x ./dsl/ ./expr/

# A realistic pipeline (filter, map, throttle, batch, retry/breaker over a chaos
# sink, dead letter) for SOAK; fails if RSS or goroutines grow after warm-up
# or a message is unaccounted for. SOAK=10m for a longer run.
soak:
	SOAK=$(SOAK) $(GO) test -tags soak -count=1 -v -timeout 0 -run '^TestSoak$$' ./soak/

# Two and three `pipe run` processes sharing one JetStream durable consumer
# and one Redis consumer group, one of them killed with SIGKILL: throughput
# and lost/duplicate counts (needs both servers; SCALEOUT_N sets the size).
crash:
	$(GO) test -tags crash -count=1 -v -timeout 30m ./test/crash/

scaleout:
	$(GO) test -tags scaleout -count=1 -v -timeout 30m ./test/scaleout/

clean:
	rm -rf bin bench.out bench-tracing.out bench-pacing.out
