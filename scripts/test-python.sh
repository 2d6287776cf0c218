#!/usr/bin/env bash
# Runs the Python package's checks and tests in the project venv: ruff, mypy --strict and
# pytest (which builds the Go CLI for the conformance comparison and starts its own
# redis-server; both must be on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d python/tests ]; then echo "no python tests yet"; exit 0; fi
.venv/bin/ruff check python examples/django-app examples/flask-app examples/fastapi-app examples/analytics
.venv/bin/ruff format --check python examples/django-app examples/flask-app examples/fastapi-app examples/analytics
.venv/bin/mypy --strict python/src/flagsync
.venv/bin/python -m pytest -q -p no:cacheprovider python/tests
