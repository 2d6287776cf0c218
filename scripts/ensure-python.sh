#!/usr/bin/env bash
# Creates the project's venv (.venv) and installs the Python package with its test
# dependencies and moto[server] (the SSM endpoint for Go tests). Re-runs pip only when
# the requirements changed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
fi
stamp="$VENV/.deps-stamp"
want=$(cat scripts/requirements-test.txt python/pyproject.toml 2>/dev/null | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  "$VENV/bin/pip" install -q -r scripts/requirements-test.txt
  if [ -f python/pyproject.toml ]; then
    "$VENV/bin/pip" install -q -e "./python[all]"
  fi
  echo "$want" > "$stamp"
fi
