#!/usr/bin/env bash
# helm CLI for the chart tests: built once from the Go module proxy (helm.sh/helm/v3,
# Apache-2.0) via the separate tools module tools/helm, cached outside the repo.
# Prints the binary's path. -mod=readonly: build exactly what tools/helm/go.sum pins.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/flagsync/bin"
HELM="$BIN_DIR/helm"
if [ -x "$HELM" ]; then echo "$HELM"; exit 0; fi
mkdir -p "$BIN_DIR"
echo "building helm from tools/helm (first time only, a few minutes)..." >&2
cd "$ROOT/tools/helm"
# Build to a temp name and rename so an interrupted build never leaves a broken binary.
CGO_ENABLED=0 go build -mod=readonly -trimpath -ldflags "-s -w" -o "$HELM.tmp.$$" helm.sh/helm/v3/cmd/helm
mv "$HELM.tmp.$$" "$HELM"
echo "$HELM"
