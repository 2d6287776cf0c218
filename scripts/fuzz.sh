#!/usr/bin/env bash
# Runs every Go fuzz target, in every module, for a bounded time ($1, default 10s) each.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${1:-10s}"
root=$PWD
for mod in $(scripts/go-modules.sh); do
  cd "$root/$mod"
  for pkg in $(go list ./...); do
    dir=$(go list -f '{{.Dir}}' "$pkg")
    for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
      echo "fuzz $pkg $target ($fuzztime)"
      go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" >/tmp/fuzz-$$.log 2>&1 || { cat /tmp/fuzz-$$.log; exit 1; }
    done
  done
done
