#!/usr/bin/env bash
# Bench programs beyond 'go test -bench' (latency percentiles, RSS, Python). Each
# part appends itself here.
set -euo pipefail
cd "$(dirname "$0")/.."
