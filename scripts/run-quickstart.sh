#!/usr/bin/env bash
# make run: for now, evaluate the example flags; the daemon work replaces this with
# the daemon on examples/quickstart.
set -euo pipefail
cd "$(dirname "$0")/.."
bin/flagsync validate examples/quickstart/flags.yaml
