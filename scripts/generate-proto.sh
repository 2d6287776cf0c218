#!/usr/bin/env bash
# make generate: the Go code of flagdsync/proto (flagd's sync protocol), committed so
# builds need no protoc. Installs protoc (Debian protobuf-compiler) and the pinned Go
# plugins when missing; the plugin versions are pinned so regenerating gives the same
# files (`scripts/generate-proto.sh --check` fails when the committed code is stale).
set -euo pipefail
cd "$(dirname "$0")/.."
PROTOC_GEN_GO_VERSION=v1.36.12     # google.golang.org/protobuf, as in go.mod
PROTOC_GEN_GO_GRPC_VERSION=v1.6.0  # google.golang.org/grpc/cmd/protoc-gen-go-grpc
TOOLS_BIN="${XDG_CACHE_HOME:-$HOME/.cache}/flagsync/bin"
mkdir -p "$TOOLS_BIN"
if ! command -v protoc >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get install -y -q protobuf-compiler >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q protobuf-compiler >/dev/null; }
  else
    echo "protoc is missing: install Debian's protobuf-compiler" >&2
    exit 1
  fi
fi
want_plugin() { # name version: install when the pinned version is not there
  local stamp="$TOOLS_BIN/.$1.version"
  if [ ! -x "$TOOLS_BIN/$1" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$3" ]; then
    GOBIN="$TOOLS_BIN" go install "$2@$3"
    echo "$3" > "$stamp"
  fi
}
want_plugin protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go "$PROTOC_GEN_GO_VERSION"
want_plugin protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc "$PROTOC_GEN_GO_GRPC_VERSION"

out=flagdsync/syncv1
dest="$out"
if [ "${1:-}" = "--check" ]; then
  dest=$(mktemp -d)
  trap 'rm -rf "$dest"' EXIT
fi
PATH="$TOOLS_BIN:$PATH" protoc -I flagdsync/proto \
  --go_out="$dest" --go_opt=paths=source_relative,Mflagd/sync/v1/sync.proto=github.com/flagsync/flagsync/flagdsync/syncv1 \
  --go-grpc_out="$dest" --go-grpc_opt=paths=source_relative,Mflagd/sync/v1/sync.proto=github.com/flagsync/flagsync/flagdsync/syncv1 \
  flagd/sync/v1/sync.proto
# paths=source_relative writes flagd/sync/v1/*.go under the output: flatten into the package.
mv "$dest"/flagd/sync/v1/*.go "$dest"/
rm -rf "$dest/flagd"
if [ "${1:-}" = "--check" ]; then
  diff -r "$dest" "$out" || { echo "flagdsync/syncv1 is stale: run make generate" >&2; exit 1; }
fi
