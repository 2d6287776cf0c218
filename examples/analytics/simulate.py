#!/usr/bin/env python3
"""A synthetic A/B experiment recorded through the real flagsync stack.

Writes a snapshot with one flag, new_checkout (a 50/50 fractional split on the
targeting key), opens it with open_store(..., analytics=EvaluationRecorder(...)) and
evaluates it for every simulated user, so the evaluation CSVs are exactly what an app
with analytics on writes. Users then convert with the chance of their variant;
conversions.csv lists every user's raw id and 0/1 outcome.

    python examples/analytics/simulate.py --out /tmp/exp --users 4000 \\
        --p-control 0.10 --p-treatment 0.14 --salt experiment-salt

Layout of --out: flags.json, evaluations/*.csv, conversions.csv.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import sys
from pathlib import Path

from flagsync import open_store
from flagsync.analytics import EvaluationRecorder
from flagsync.canonical import encode_document

FLAG = "new_checkout"
FLAGS = {
    FLAG: {
        "state": "ENABLED",
        "variants": {"on": True, "off": False},
        "defaultVariant": "off",
        "targeting": {"fractional": [["on", 50], ["off", 50]]},
    }
}


def simulate(
    out: Path, users: int, p_control: float, p_treatment: float, seed: int, salt: str
) -> dict[str, int]:
    """Records the experiment into out; returns the number of users per variant."""
    out.mkdir(parents=True, exist_ok=True)
    flags = out / "flags.json"
    flags.write_bytes(encode_document({"flags": FLAGS}))
    rng = random.Random(seed)
    recorder = EvaluationRecorder(
        out / "evaluations",
        hash_targeting_key=True,
        salt=salt,
        buffer_size=4 * users + 16,
    )
    store = open_store(flags, analytics=recorder)
    counts = {"on": 0, "off": 0}
    try:
        with open(out / "conversions.csv", "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["targeting_key", "converted"])
            for i in range(users):
                ctx = {"targetingKey": f"user-{i}"}
                treated = store.get(FLAG, False, ctx)  # the product page
                store.get(FLAG, False, ctx)  # the checkout page: the same variant
                counts["on" if treated else "off"] += 1
                p = p_treatment if treated else p_control
                w.writerow([ctx["targetingKey"], int(rng.random() < p)])
    finally:
        store.close()
        if not recorder.close(timeout=30) or recorder.dropped:
            raise RuntimeError(f"analytics dropped {recorder.dropped} evaluations")
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--users", type=int, default=4000)
    ap.add_argument("--p-control", type=float, default=0.10)
    ap.add_argument("--p-treatment", type=float, default=0.14)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--salt", default=os.environ.get("ANALYTICS_SALT", ""))
    args = ap.parse_args(argv)
    counts = simulate(
        args.out, args.users, args.p_control, args.p_treatment, args.seed, args.salt
    )
    print(f"{FLAG}: {counts['on']} users on, {counts['off']} off -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
