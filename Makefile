# flagsync — one Makefile for the Go module, the Python package and the services tests need.
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

.PHONY: all build run test test-go test-fuzz test-python test-diff fuzz-diff bench lint fmt deps clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/flagsync

run: build
	@scripts/run-quickstart.sh

## deps: everything the test suites need on a fresh machine (idempotent, quick when present)
deps:
	@scripts/ensure-redis.sh
	@scripts/ensure-python.sh
	@scripts/ensure-consul.sh
	@scripts/ensure-helm.sh >/dev/null
	@scripts/ensure-chromium.sh
	@scripts/ensure-ofrep-node.sh

test: deps build
	@scripts/check-repo.sh
	@$(GO) mod tidy -diff >/dev/null || { echo "go.mod/go.sum are not tidy: run go mod tidy"; $(GO) mod tidy -diff; exit 1; }
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go' | grep -v '^tools/'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(MAKE) test-go
	$(MAKE) test-fuzz
	$(MAKE) test-python
	$(MAKE) test-diff

test-go:
	$(GO) test -race -count=1 -timeout 20m ./...

## test-fuzz: every fuzz target for a short, bounded time
test-fuzz:
	@scripts/fuzz.sh 10s

test-python:
	@scripts/test-python.sh

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
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./flagset/ ./provider/ ./daemon/ ./ofrep/ ./analytics/ | tee var/bench-go.txt
	@scripts/bench-extra.sh

lint:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	@if [ -x $(PY) ]; then $(VENV)/bin/ruff check python && $(VENV)/bin/mypy --strict python/src/flagsync; fi

fmt:
	gofmt -w $$(git ls-files '*.go')
	@if [ -x $(VENV)/bin/ruff ]; then $(VENV)/bin/ruff format python; fi

clean:
	rm -rf bin var
