#!/usr/bin/env bash
# consul-template, the reference the Consul change-latency bench compares the daemon
# with (sources/consul BenchmarkConsulVsConsulTemplate): built once from the Go module
# proxy via the separate tools/consul-template module (MPL-2.0), cached outside the
# repo in TOOLS_BIN. Rebuilt only when missing or not the pinned version.
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS_BIN="${TOOLS_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/flagsync/bin}"
BIN="${FLAGSYNC_CONSUL_TEMPLATE_BIN:-$TOOLS_BIN/consul-template}"
VERSION=$(awk '{ for (i = 1; i < NF; i++) if ($i == "github.com/hashicorp/consul-template") print $(i + 1) }' tools/consul-template/go.mod)

version_of() { "$1" -version 2>&1 | sed -n 1p | awk '{ print $2 }'; }

if [[ -x "$BIN" ]] && [[ "$(version_of "$BIN")" == "$VERSION" ]]; then
	exit 0
fi

echo "ensure-consul-template: building consul-template $VERSION into $BIN (first time only)" >&2
mkdir -p "$(dirname "$BIN")"
tmp="$BIN.tmp.$$"
trap 'rm -f "$tmp"' EXIT
# -mod=readonly: build exactly what tools/consul-template/go.sum pins.
go build -C tools/consul-template -mod=readonly -o "$tmp" github.com/hashicorp/consul-template
[[ "$(version_of "$tmp")" == "$VERSION" ]] || {
	echo "ensure-consul-template: built binary does not report $VERSION" >&2
	exit 1
}
mv -f "$tmp" "$BIN"
echo "ensure-consul-template: consul-template $(version_of "$BIN") at $BIN" >&2
