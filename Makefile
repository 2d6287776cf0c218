# flagsync — one Makefile for the Go modules, the Python package and the services tests need.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

GO        ?= go
BIN       := bin/flagsync
VENV      := .venv
PY        := $(VENV)/bin/python
TOOLS_BIN := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/flagsync/bin
# Tests find redis-server, consul and moto_server on PATH.
export PATH := $(CURDIR)/$(VENV)/bin:$(TOOLS_BIN):$(PATH)
export FLAGSYNC_CONSUL_BIN := $(TOOLS_BIN)/consul
# Every Go module (docs/ARCHITECTURE.md "Modules"); each target below runs in each.
GO_MODULES := $(shell scripts/go-modules.sh)
# The modules whose tests start Consul or run helm; the others need neither.
GO_MODULES_SERVICES := . internal/testsvc
GO_MODULES_LEAN := $(filter-out $(GO_MODULES_SERVICES),$(GO_MODULES))
in_modules = for m in $(GO_MODULES); do (cd $$m && $(1)) || exit 1; done
in_these_modules = for m in $(1); do (cd $$m && $(2)) || exit 1; done

.PHONY: all build run test check-static test-go test-go-lean test-go-services test-fuzz test-python test-notebook test-diff fuzz-diff bench lint fmt deps clean generate check-generate

all: build

build:
	$(GO) build -o $(BIN) ./cmd/flagsync

run: build
	@scripts/run-quickstart.sh

## deps: everything the test suites need on a fresh machine (idempotent, quick when present)
deps:
	@scripts/deps.sh

## test: every check and suite (scripts/test.sh: deps, then the targets below; Consul and
## helm build meanwhile)
test:
	@scripts/test.sh

## check-static: no build outputs in git, tidy modules, go vet, gofmt
check-static:
	@scripts/check-repo.sh
	@$(call in_modules,$(GO) mod tidy -diff >/dev/null || { echo "$$m: go.mod/go.sum are not tidy: run go mod tidy there"; $(GO) mod tidy -diff; exit 1; })
	$(call in_modules,$(GO) vet ./...)
	@test -z "$$(gofmt -l $$(git ls-files '*.go' | grep -v '^tools/'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

GO_TEST := $(GO) test -race -count=1 -timeout 20m ./...
test-go: test-go-lean test-go-services
test-go-lean:
	$(call in_these_modules,$(GO_MODULES_LEAN),$(GO_TEST))
test-go-services:
	$(call in_these_modules,$(GO_MODULES_SERVICES),$(GO_TEST))

## test-fuzz: every fuzz target for a short, bounded time
test-fuzz:
	@scripts/fuzz.sh 10s

test-python:
	@scripts/test-python.sh

## test-notebook: examples/analytics/analysis.ipynb executed headless (jupyter nbconvert
## --execute) on a generated experiment; its plot must be written
test-notebook:
	@scripts/test-notebook.sh

## test-diff: the Go and the Python reader on a fixed set of random documents and cases
## (conformance/diffgen, seeds 1..200, 5000 cases, under a minute): every output line must be identical
DIFF_SEED ?= 1
test-diff: build
	$(GO) run ./conformance/diffgen -go $(BIN) -python $(PY) -seed $(DIFF_SEED) -docs 200 -cases 25

## fuzz-diff: the same for longer, from a new seed each run (FUZZ_DIFF_TIME, default 10m);
## a difference prints its seed: reproduce it with `make test-diff DIFF_SEED=<seed>`
FUZZ_DIFF_TIME ?= 10m
fuzz-diff: deps build
	$(GO) run ./conformance/diffgen -go $(BIN) -python $(PY) -seed $$(date +%s) -duration $(FUZZ_DIFF_TIME) -cases 25

bench: deps build
	@mkdir -p var
	{ for m in flagset provider analytics; do (cd $$m && $(GO) test -run '^$$' -bench . -benchmem -count 1 ./); done; \
	  $(GO) test -run '^$$' -bench . -benchmem -count 1 ./daemon/ ./ofrep/ ./flagdsync/; } | tee var/bench-go.txt
	@scripts/bench-extra.sh

lint:
	$(call in_modules,$(GO) vet ./...)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	@if [ -x $(PY) ]; then $(VENV)/bin/ruff check python && $(VENV)/bin/mypy --strict python/src/flagsync; fi

fmt:
	gofmt -w $$(git ls-files '*.go')
	@if [ -x $(VENV)/bin/ruff ]; then $(VENV)/bin/ruff format python; fi

## generate: the Go code of flagdsync/proto (flagd's sync protocol; committed, so builds need no protoc)
generate:
	@scripts/generate-proto.sh

## check-generate: fails when the committed generated code differs from a fresh generation
check-generate:
	@scripts/generate-proto.sh --check

clean:
	rm -rf bin var
