#!/usr/bin/env bash
# Runs the Python package's checks and tests in the project venv.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d python/tests ]; then echo "no python tests yet"; exit 0; fi
.venv/bin/python -m pytest -q python/tests
