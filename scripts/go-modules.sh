#!/usr/bin/env bash
# Prints the directory of every Go module the project builds and tests, one per line:
# the daemon module at the root, the lean modules apps import, and the examples
# (tools/ holds pinned build tools, not project code). Makefile and scripts loop
# over this list so a new module is added in one place.
set -euo pipefail
cd "$(dirname "$0")/.."
git ls-files '*go.mod' | grep -v '^tools/' | xargs -n1 dirname | sort
