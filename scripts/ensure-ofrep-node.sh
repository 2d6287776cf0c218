#!/usr/bin/env bash
# Installs the npm packages of the official OFREP client harnesses
# (conformance/clients/ofrep-node*, run under Node by python/tests/test_ofrep_events.py)
# exactly as each package-lock.json pins them. Each install is cached by its lockfile's
# hash under ~/.cache/flagsync/npm, and node_modules is a link to it: re-runs are instant.
set -euo pipefail
cd "$(dirname "$0")/../conformance/clients"
command -v npm >/dev/null || { echo "ensure-ofrep-node: npm not found (Node 20 is needed for the OFREP client tests)" >&2; exit 1; }
for dir in ofrep-node ofrep-node-server; do
  (
    cd "$dir"
    hash=$(cat package.json package-lock.json | sha256sum | cut -c1-16)
    cache="${XDG_CACHE_HOME:-$HOME/.cache}/flagsync/npm/$dir-$hash"
    if [ ! -f "$cache/.complete" ]; then
      rm -rf "$cache" && mkdir -p "$cache"
      cp package.json package-lock.json "$cache/"
      (cd "$cache" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
      touch "$cache/.complete"
    fi
    if [ "$(readlink node_modules 2>/dev/null)" != "$cache/node_modules" ]; then
      rm -rf node_modules
      ln -s "$cache/node_modules" node_modules
    fi
  )
done
