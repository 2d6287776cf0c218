#!/usr/bin/env bash
# Runs examples/analytics/analysis.ipynb headless on a freshly generated experiment
# (examples/analytics/simulate.py records it through a store with analytics on) and checks
# that it wrote its plot, a non-empty PNG. Also fails when the committed notebook carries
# outputs or execution counts (commit it stripped: outputs belong to whoever runs it).
set -euo pipefail
cd "$(dirname "$0")/.."
NB=examples/analytics/analysis.ipynb
PY=.venv/bin/python

"$PY" - "$NB" <<'PYEOF'
import json, sys
nb = json.load(open(sys.argv[1], encoding="utf-8"))
dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
         and (c.get("outputs") or c.get("execution_count") is not None)]
if dirty:
    sys.exit(f"{sys.argv[1]}: cells {dirty} have outputs; strip them before committing "
             "(jupyter nbconvert --clear-output --inplace)")
PYEOF

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
salt=notebook-test-salt
"$PY" examples/analytics/simulate.py --out "$tmp" --users 4000 --seed 7 \
  --p-control 0.10 --p-treatment 0.16 --salt "$salt"
ANALYTICS_EVALUATIONS="$tmp/evaluations" ANALYTICS_OUTCOMES="$tmp/conversions.csv" \
  ANALYTICS_FLAG=new_checkout ANALYTICS_SALT="$salt" ANALYTICS_PLOT="$tmp/conversion.png" \
  .venv/bin/jupyter nbconvert --execute --to notebook --output-dir "$tmp" \
  --ExecutePreprocessor.timeout=120 "$NB" 2>"$tmp/nbconvert.log" \
  || { cat "$tmp/nbconvert.log" >&2; exit 1; }

png="$tmp/conversion.png"
if [ ! -s "$png" ] || [ "$(head -c 8 "$png" | od -An -tx1 | tr -d ' \n')" != "89504e470d0a1a0a" ]; then
  echo "test-notebook: $NB did not write a PNG plot to $png" >&2
  exit 1
fi
echo "test-notebook: $NB ran on a generated experiment and wrote a $(stat -c %s "$png")-byte PNG"
