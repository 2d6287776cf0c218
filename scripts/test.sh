#!/usr/bin/env bash
# make test: every check and every suite, on a fresh machine too. Consul and helm are
# built from the Go module proxy and take minutes of CPU the first time, so they build
# in the background while the checks and the suites that need neither run; the Go
# modules whose tests start Consul or run helm (the daemon module and internal/testsvc)
# are tested last. A failed tool build prints its log.
set -euo pipefail
cd "$(dirname "$0")/.."
tools_log=$(mktemp)
# setsid: the build gets its own process group, so an early failure stops all of it.
setsid scripts/deps.sh consul helm >"$tools_log" 2>&1 &
tools=$!
trap 'kill -- -"$tools" 2>/dev/null || true; rm -f "$tools_log"' EXIT
scripts/deps.sh debian python flagd-clients ofrep-node
make --no-print-directory build check-static test-fuzz test-python test-notebook test-diff test-go-lean
echo "test: waiting for the Consul and helm builds" >&2
if ! wait "$tools"; then
	cat "$tools_log" >&2
	exit 1
fi
make --no-print-directory test-go-services
