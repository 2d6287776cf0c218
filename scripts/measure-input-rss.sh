#!/usr/bin/env bash
# Peak RSS (VmHWM) of `flagsync run` on a large file source, for docs/CONFIG.md
# ("Input size and memory"). The input is the densest kind (tiny flags: the most
# flags per byte, the most memory per input byte). The daemon restarts over a
# previous snapshot of the same size (so it holds both while it syncs), then one
# change is synced.
#   usage: scripts/measure-input-rss.sh [MiB]   (default 7.99: just under maxBytes)
set -euo pipefail
cd "$(dirname "$0")/.."
MIB=${1:-7.99}
D=$(mktemp -d)
trap 'kill "${PID:-}" 2>/dev/null || true; rm -rf "$D"' EXIT
go build -o "$D/flagsync" ./cmd/flagsync
gen() { # gen MiB variant > file
  python3 - "$1" "$2" <<'PY'
import json, sys
size, variant = int(float(sys.argv[1]) * 1024 * 1024), sys.argv[2]
one = len(json.dumps({"f0000000": {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off"}}, separators=(",", ":")))
flags = {f"f{i:07d}": {"state": "ENABLED", "variants": {"on": True, "off": False},
                       "defaultVariant": "on" if i == 0 and variant == "b" else "off"} for i in range(size // one)}
sys.stdout.write(json.dumps({"flags": flags}, separators=(",", ":")))
PY
}
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf "flagSetId: mem\nschedule: '@every 1h'\nsources: [{name: git, type: file, path: %s}]\noutputs:\n  file: {path: %s}\nhttp: {listen: 127.0.0.1:%s}\nlog: {level: warn}\n" \
  "$D/flags.json" "$D/out/flags.json" "$PORT" > "$D/cfg.yaml"
gen "$MIB" a > "$D/flags.json"
"$D/flagsync" sync --once --config "$D/cfg.yaml" > /dev/null 2>&1 # the previous snapshot
gen "$MIB" b > "$D/new.json" && mv "$D/new.json" "$D/flags.json"
"$D/flagsync" run --config "$D/cfg.yaml" 2> "$D/log" & PID=$!
generation() { curl -s "127.0.0.1:$PORT/api/v1/status" | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["generation"] if (s.get("lastSync") or {}).get("result") == "published" else 0)' 2>/dev/null || echo 0; }
until [ "$(generation)" != 0 ]; do sleep 0.2; done
G=$(generation); H1=$(awk '/VmHWM/{print $2}' /proc/$PID/status)
gen "$MIB" a > "$D/new.json" && mv "$D/new.json" "$D/flags.json"
until [ "$(generation)" != "$G" ]; do sleep 0.2; done
H2=$(awk '/VmHWM/{print $2}' /proc/$PID/status)
echo "input $(stat -c %s "$D/flags.json") bytes: VmHWM after restart+publish ${H1} kB, after one change ${H2} kB"
