#!/usr/bin/env bash
# Fails when git tracks a build output: a binary file (one with a NUL byte) or a file
# over 1 MiB. Data files that must be large or binary are allowed by exact path below.
set -euo pipefail
cd "$(dirname "$0")/.."
allowed=(
  # path/of/allowed/file
)
limit=$((1024 * 1024))
bad=0
while IFS= read -r -d '' f; do
  [ -f "$f" ] || continue # deleted in the work tree, not yet committed
  for a in "${allowed[@]}"; do [ "$f" = "$a" ] && continue 2; done
  size=$(stat -c %s "$f")
  if [ "$size" -gt "$limit" ]; then
    echo "check-repo: $f is $size bytes (over 1 MiB): build outputs do not belong in git" >&2; bad=1
  elif LC_ALL=C grep -qa -P '\x00' "$f"; then
    echo "check-repo: $f is a binary file: build outputs do not belong in git" >&2; bad=1
  fi
done < <(git ls-files -z)
exit "$bad"
