#!/usr/bin/env bash
# helm CLI for the chart tests: built once from the Go module proxy (helm.sh/helm/v3,
# Apache-2.0) via the separate tools module tools/helm, cached outside the repo.
# Prints the binary's path. Rebuilt when missing or when it is not the version
# tools/helm/go.mod pins. -mod=readonly: build exactly what tools/helm/go.sum pins.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/flagsync/bin"
HELM="$BIN_DIR/helm"
pinned=$(awk '$1 == "require" && $2 == "helm.sh/helm/v3" { print $3 }' "$ROOT/tools/helm/go.mod")
[ -n "$pinned" ] || { echo "ensure-helm: no helm.sh/helm/v3 pin in tools/helm/go.mod" >&2; exit 1; }
# `helm version --short` prints the version, with "+g<commit>" after it when one is stamped.
if [ -x "$HELM" ] && [[ "$("$HELM" version --short 2>/dev/null | cut -d+ -f1)" == "$pinned" ]]; then
  echo "$HELM"; exit 0
fi
mkdir -p "$BIN_DIR"
echo "building helm $pinned from tools/helm (first time only, a few minutes)..." >&2
cd "$ROOT/tools/helm"
# Build to a temp name and rename so an interrupted build never leaves a broken binary.
# The version is stamped the way helm's own release build does, so the check above works.
CGO_ENABLED=0 go build -mod=readonly -trimpath \
  -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$pinned" \
  -o "$HELM.tmp.$$" helm.sh/helm/v3/cmd/helm
mv "$HELM.tmp.$$" "$HELM"
echo "$HELM"
