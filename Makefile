# Targets CI and the README use. `make test` is the README's test command.
GO      ?= go
PKGS    ?= ./...
FUZZTIME ?= 20s
SOAK    ?= 60s

.PHONY: all build test vet validate docs bench fuzz hostile soak quickstart clean

all: build

build:
	$(GO) build -o bin/pipe ./cmd/pipe

# The README's test command: every test, with the race detector.
test:
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

vet:
	$(GO) vet $(PKGS)

# Validate every example pipeline and run its tests (*_test.yaml) with the CLI.
validate: build
	./bin/pipe validate $$(ls pipelines/*.yaml | grep -v '_test\.yaml$$')
	./bin/pipe test pipelines/*_test.yaml

# The kinds reference and JSON Schema, generated from the registry; a test
# fails when the checked-in copies are stale.
docs:
	$(GO) run ./cmd/pipe kinds --markdown > docs/kinds.md
	$(GO) run ./cmd/pipe schema > docs/pipe.schema.json

quickstart:
	$(GO) run ./cmd/pipe run pipelines/quickstart.yaml

# Throughput of the compiled quickstart shape against a hand-written loop.
# Compare runs with benchstat (go run golang.org/x/perf/cmd/benchstat@latest).
bench:
	$(GO) test -run '^$$' -bench 'Quickstart' -benchmem -count 6 ./bench/ | tee bench.out

# Each fuzz target briefly (CI); set FUZZTIME=10m for a longer run.
fuzz:
	@for p in $$($(GO) list ./...); do \
		for t in $$($(GO) test -list '^Fuzz' $$p | grep ^Fuzz); do \
			echo "fuzz $$p $$t"; \
			$(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$p || exit 1; \
		done; done

# Hostile configs must each be rejected within a time bound; the bound is
# checked here, in a benchmark, not in a timed test.
hostile:
	$(GO) test -run '^$$' -bench 'Hostile' -benchtime 3x ./dsl/

# A realistic pipeline (filter, map, throttle, retry/breaker over a chaos
# sink, dead letter) for SOAK; fails if RSS or goroutines grow after warm-up
# or a message is unaccounted for. SOAK=10m for a longer run.
soak:
	SOAK=$(SOAK) $(GO) test -tags soak -count=1 -v -timeout 0 -run '^TestSoak$$' ./soak/

clean:
	rm -rf bin bench.out
