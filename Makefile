GO ?= go
BIN ?= bin
# ork is built static, without cgo (the pure-Go resolver of package net,
# no dynamic loader at each start), and without the man-page generator of
# urfave/cli, whose markdown package costs milliseconds at every start.
# The CLI's end-to-end tests build ork the same way (see cli/e2e_test.go).
BUILD_ENV = CGO_ENABLED=0
BUILD_TAGS = urfave_cli_no_docs

.PHONY: build build-cloudrun demo test vet fmt-check tidy-check cross-check bench perf-2000 clean

build:
	$(BUILD_ENV) $(GO) build -tags $(BUILD_TAGS) -o $(BIN)/ork .

# ork with the Cloud Run Jobs executor (see README).
build-cloudrun:
	$(BUILD_ENV) $(GO) build -tags $(BUILD_TAGS),cloudrun -o $(BIN)/ork .

# Runs a real demo workflow end to end on the file database, in a
# temporary directory.
demo: build
	./scripts/demo.sh $(BIN)/ork

# The packages with tests on PostgreSQL (build tag postgres), and the CLI's
# TestPostgres* tests; they run on the server ORK_TEST_DATABASE_URL names,
# and skip without it (fail in CI).
PG_PKGS ?= ./pgdb/... ./sched

# Everything CI checks.
test: fmt-check vet tidy-check cross-check
	$(GO) test -race -count=1 -timeout 15m ./...
	$(GO) test -race -count=1 -timeout 15m -tags postgres $(PG_PKGS)
	$(GO) test -race -count=1 -timeout 15m -tags postgres -run Postgres ./cli
	$(GO) test -race -count=1 -timeout 10m -tags cloudrun ./exec/cloudrun/... ./cmd/perf-test
	$(GO) test -race -count=1 -timeout 10m -tags cloudrun -run CloudRun ./cli

# go.mod and go.sum say exactly what the code imports.
tidy-check:
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }

# macOS: everything, tests included, compiles and vets; Windows: ork builds.
cross-check:
	GOOS=darwin GOARCH=arm64 $(GO) vet ./...
	GOOS=windows GOARCH=amd64 $(GO) build ./...

vet:
	$(GO) vet ./...
	$(GO) vet -tags postgres ./...
	$(GO) vet -tags cloudrun ./exec/cloudrun/... ./cli ./cmd/perf-test

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

# Go benchmarks of the hot paths (compare runs with benchstat).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 6 ./filedb ./sched

# 2,000 tasks through `ork trigger --wait` against `xargs -P N`.
perf-2000: build
	./scripts/bench-xargs.sh $(BIN)/ork

clean:
	rm -rf $(BIN)

# The quick performance workload: 1,000 real processes against xargs -P N,
# and trigger latencies. Every workload: scripts/perf-results.sh (see
# docs/PERFORMANCE.md).
# The start of `ork --version` and `ork trigger` against an empty Go
# program, side by side.
.PHONY: perf-start
perf-start: build
	./scripts/bench-start.sh 100 7 $(BIN)/ork

# The CLI-level figures, each against its baseline in the same run: the
# start, a chain of 50 tasks against sh, trigger -> task start against the
# CLI started once plus the script, 2,000 tasks against xargs -P N.
.PHONY: perf-cli
perf-cli: build
	./scripts/bench-cli.sh $(BIN)/ork

.PHONY: perf
perf:
	$(GO) build -o $(BIN)/perf-test ./cmd/perf-test
	$(BIN)/perf-test quick
