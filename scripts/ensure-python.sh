#!/usr/bin/env bash
# Creates the project's venv (.venv) and installs the Python package (editable, with every
# integration and the analytics example's extra), its development tools (the "dev"
# dependency group of python/pyproject.toml, PEP 735, which needs pip >= 25.1) and
# moto[server] (the SSM endpoint for Go tests). Re-runs pip only when the requirements
# changed.
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
  "$VENV/bin/pip" install -q --upgrade "pip>=25.1" # --group
  "$VENV/bin/pip" install -q -r scripts/requirements-test.txt
  if [ -f python/pyproject.toml ]; then
    "$VENV/bin/pip" install -q -e "./python[all,analytics]" --group python/pyproject.toml:dev
  fi
  echo "$want" > "$stamp"
fi
