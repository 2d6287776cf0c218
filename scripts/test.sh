#!/usr/bin/env bash
# make test: every check and every suite, on a fresh machine too. What the suites need
# is installed in the background (scripts/deps.sh) while the steps that need none of
# it run: the build, the static checks and the fuzz targets. Consul and helm, built
# from the Go module proxy, take minutes of CPU the first time, so the Go modules whose
# tests start Consul or run helm (the daemon module and internal/testsvc) come last.
# A failed install prints its log.
set -euo pipefail
cd "$(dirname "$0")/.."
logs=$(mktemp -d)
# setsid: each install gets its own process group, so an early failure stops all of it.
setsid scripts/deps.sh consul helm >"$logs/tools" 2>&1 &
tools=$!
setsid scripts/deps.sh debian python flagd-clients ofrep-node >"$logs/base" 2>&1 &
base=$!
trap 'kill -- -"$tools" -"$base" 2>/dev/null || true; rm -rf "$logs"' EXIT

# waitfor PID NAME: wait for an install, print its log if it failed.
waitfor() {
	echo "test: waiting for $2" >&2
	if ! wait "$1"; then
		cat "$logs/$2" >&2
		exit 1
	fi
}

make --no-print-directory build check-static test-fuzz
waitfor "$base" base
make --no-print-directory test-python test-notebook test-diff test-go-lean
waitfor "$tools" tools
make --no-print-directory test-go-services
