#!/usr/bin/env bash
# Everything the test suites need on a fresh machine, installed concurrently: Debian
# packages (one job, since apt holds one lock), the venv, and the tools built from the
# Go module proxy. Each part is idempotent and quick when already present. A failed
# part prints its log and fails the whole; the others still finish.
#
# Usage: deps.sh [PART...]   PART: debian python consul helm flagd-clients ofrep-node
# (default: all). scripts/test.sh builds consul and helm, which take minutes on a
# fresh machine, while the suites that do not need them run.
set -euo pipefail
cd "$(dirname "$0")/.."
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
declare -A parts=()
wanted=" ${*:-debian python consul helm flagd-clients ofrep-node} "
start() {
	local name=$1
	shift
	[[ "$wanted" == *" $name "* ]] || return 0
	("$@") >"$logs/$name.log" 2>&1 &
	parts[$!]=$name
}
start debian bash -c 'scripts/ensure-redis.sh && scripts/ensure-chromium.sh'
start python scripts/ensure-python.sh
start consul scripts/ensure-consul.sh
start helm scripts/ensure-helm.sh
start flagd-clients scripts/ensure-flagd-clients.sh
start ofrep-node scripts/ensure-ofrep-node.sh
failed=0
for pid in "${!parts[@]}"; do
	if ! wait "$pid"; then
		echo "deps: ${parts[$pid]} failed:" >&2
		cat "$logs/${parts[$pid]}.log" >&2
		failed=1
	fi
done
exit "$failed"
