#!/usr/bin/env bash
# Consul test agent: built once from the Go module proxy (v1.14.11, the last MPL-2.0
# release) via the separate tools/consul module, cached outside the repo in TOOLS_BIN.
# Rebuilt only when missing or when `consul version` is not the pinned version.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=v1.14.11
TOOLS_BIN="${TOOLS_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/flagsync/bin}"
# The Makefile exports FLAGSYNC_CONSUL_BIN (= $TOOLS_BIN/consul); tests use the same.
BIN="${FLAGSYNC_CONSUL_BIN:-$TOOLS_BIN/consul}"

# First line of `consul version` (captured whole: grep -q would close the pipe early).
version_of() { "$1" version 2>/dev/null | sed -n 1p; }

if [[ -x "$BIN" ]] && [[ "$(version_of "$BIN")" == "Consul $VERSION" ]]; then
	exit 0
fi

pinned=$(awk '$1 == "github.com/hashicorp/consul" { print $2 }' tools/consul/go.mod)
if [[ "$pinned" != "$VERSION" ]]; then
	echo "ensure-consul: tools/consul/go.mod pins '$pinned', this script expects $VERSION" >&2
	exit 1
fi

echo "ensure-consul: building Consul $VERSION into $BIN (first time only; takes a few minutes)" >&2
mkdir -p "$(dirname "$BIN")"
tmp="$BIN.tmp.$$"
trap 'rm -f "$tmp"' EXIT
# -mod=readonly: build exactly what tools/consul/go.sum pins.
# A test agent: the compiler's optimizations and the symbol tables would cost a fifth of
# the build's CPU (measured: 410 s of CPU with them, 323 s without) and buy nothing the
# tests need.
go build -C tools/consul -mod=readonly -gcflags=all="-N -l" -ldflags="-s -w" -o "$tmp" github.com/hashicorp/consul
[[ "$(version_of "$tmp")" == "Consul $VERSION" ]] || {
	echo "ensure-consul: built binary does not report Consul $VERSION" >&2
	exit 1
}
mv -f "$tmp" "$BIN"
echo "ensure-consul: $(version_of "$BIN") at $BIN" >&2
