#!/usr/bin/env bash
# make run: the flagsync daemon on examples/quickstart, in the foreground until Ctrl-C.
# Paths in the quickstart config are relative to the repository root (the daemon
# resolves relative paths against its working directory).
set -euo pipefail
cd "$(dirname "$0")/.."
cfg=examples/quickstart/flagsync.yaml
listen="${FLAGSYNC_LISTEN:-127.0.0.1:8080}"
mkdir -p var
cat <<EOF
flagsync quickstart
  config:  $cfg
  flags:   examples/quickstart/flags.yaml   (edit and save: published within ~100 ms)
  output:  var/flags.json
  status:  http://$listen/api/v1/status   (also /healthz /readyz /metrics /api/v1/snapshot)
  flagd sync (gRPC, for flagd in-process providers): ${FLAGSYNC_SYNC_LISTEN:-127.0.0.1:8015}
  flip a flag without editing git:  FLAGSYNC_FLAG_BETA_MODE=true make run
Ctrl-C stops it.

EOF
exec bin/flagsync run --config "$cfg"
