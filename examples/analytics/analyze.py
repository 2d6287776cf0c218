#!/usr/bin/env python3
"""Per-variant conversion of a flag experiment from flagsync evaluation CSVs.

Reads the CSV files the analytics hooks write (Go: analytics package, Python:
flagsync.analytics.AnalyticsHook), assigns every user (targeting_key) the variant of
their first successful evaluation of the flag, joins an outcome file (one row per
converting user, or a numeric outcome column) and compares two variants with Welch's
two-sample t-test.

    python examples/analytics/analyze.py --evaluations 'var/analytics/*.csv' \\
        --outcomes conversions.csv --flag new_checkout [--control off --treatment on]

If the hook hashed targeting keys (HMAC-SHA256 with a salt), pass the same --salt and
the outcome file's raw user ids are hashed the same way before the join.

Requires pandas, numpy and scipy.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import hmac
import json
import sys
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats


def load_evaluations(pattern: str) -> pd.DataFrame:
    """All rows of the CSV files matching pattern (a glob or a directory)."""
    if not any(c in pattern for c in "*?["):
        pattern = pattern.rstrip("/") + "/*.csv"
    files = sorted(glob.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no evaluation files match {pattern}")
    frames = [pd.read_csv(f, dtype=str, keep_default_na=False) for f in files]
    return pd.concat(frames, ignore_index=True)


def hash_ids(ids: pd.Series, salt: str | None) -> pd.Series:
    """Hash raw user ids like the hooks do: HMAC-SHA256 with salt, else SHA-256."""
    if salt:
        key = salt.encode()
        return ids.map(lambda s: hmac.new(key, s.encode(), hashlib.sha256).hexdigest())
    return ids.map(lambda s: hashlib.sha256(s.encode()).hexdigest())


def assignments(evals: pd.DataFrame, flag: str) -> tuple[pd.DataFrame, int]:
    """One row per user with the variant first served; users who were served more than
    one variant (the rollout changed under them) are left out and counted."""
    ok = evals[
        (evals["flag_key"] == flag)
        & (evals["error_code"] == "")
        & (evals["targeting_key"] != "")
    ]
    ok = ok[ok["variant"] != ""].sort_values("timestamp", kind="stable")
    n_variants = ok.groupby("targeting_key")["variant"].nunique()
    mixed = set(n_variants[n_variants > 1].index)
    first = ok.drop_duplicates("targeting_key", keep="first")
    first = first[~first["targeting_key"].isin(mixed)]
    return first[["targeting_key", "variant"]].reset_index(drop=True), len(mixed)


def analyze(
    evals: pd.DataFrame,
    outcomes: pd.DataFrame,
    flag: str,
    *,
    control: str | None = None,
    treatment: str | None = None,
    outcome_column: str = "converted",
    id_column: str = "targeting_key",
    salt: str | None = None,
    hash_outcome_ids: bool = False,
    alpha: float = 0.05,
) -> dict[str, Any]:
    users, mixed = assignments(evals, flag)
    if users.empty:
        raise ValueError(f"no successful evaluations of flag {flag!r}")
    out = outcomes.copy()
    out[id_column] = out[id_column].astype(str)
    if hash_outcome_ids or salt:
        out[id_column] = hash_ids(out[id_column], salt)
    if outcome_column in out.columns:
        out = out.groupby(id_column, as_index=False)[outcome_column].max()
    else:  # a plain list of converting users
        out = out[[id_column]].drop_duplicates().assign(**{outcome_column: 1})
    joined = users.merge(out, how="left", left_on="targeting_key", right_on=id_column)
    joined[outcome_column] = pd.to_numeric(
        joined[outcome_column], errors="coerce"
    ).fillna(0.0)

    per_variant = (
        joined.groupby("variant")[outcome_column]
        .agg(users="count", conversions="sum", rate="mean")
        .sort_values("users", ascending=False)
    )
    variants = list(per_variant.index)
    if control is None or treatment is None:
        if len(variants) < 2:
            raise ValueError(
                f"flag {flag!r} served only {variants}: nothing to compare"
            )
        pair = sorted(variants[:2])
        control = control or pair[0]
        treatment = treatment or (pair[1] if pair[0] == control else pair[0])
    for v in (control, treatment):
        if v not in per_variant.index:
            raise ValueError(f"variant {v!r} was not served (served: {variants})")
    a = joined.loc[joined["variant"] == control, outcome_column].to_numpy(dtype=float)
    b = joined.loc[joined["variant"] == treatment, outcome_column].to_numpy(dtype=float)
    t, p = stats.ttest_ind(b, a, equal_var=False)
    return {
        "flag": flag,
        "control": control,
        "treatment": treatment,
        "variants": {
            str(v): {
                "users": int(r.users),
                "conversions": float(r.conversions),
                "rate": float(r.rate),
            }
            for v, r in per_variant.iterrows()
        },
        "excluded_mixed_users": mixed,
        "lift": float(np.mean(b) - np.mean(a)),
        "t": float(t),
        "p_value": float(p),
        "alpha": alpha,
        "significant": bool(p < alpha),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--evaluations", required=True, help="directory or glob of evaluation CSV files"
    )
    ap.add_argument(
        "--outcomes",
        required=True,
        help="CSV with the user id column and optionally an outcome column",
    )
    ap.add_argument("--flag", required=True)
    ap.add_argument("--control")
    ap.add_argument("--treatment")
    ap.add_argument("--outcome-column", default="converted")
    ap.add_argument("--id-column", default="targeting_key")
    ap.add_argument(
        "--salt", help="HMAC salt the hook used; hashes the outcome ids to match"
    )
    ap.add_argument(
        "--hash-ids", action="store_true", help="hash outcome ids with plain SHA-256"
    )
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    args = ap.parse_args(argv)
    try:
        evals = load_evaluations(args.evaluations)
        outcomes = pd.read_csv(args.outcomes, dtype=str, keep_default_na=False)
        res = analyze(
            evals,
            outcomes,
            args.flag,
            control=args.control,
            treatment=args.treatment,
            outcome_column=args.outcome_column,
            id_column=args.id_column,
            salt=args.salt,
            hash_outcome_ids=args.hash_ids,
            alpha=args.alpha,
        )
    except (OSError, ValueError, KeyError) as e:
        print(f"analyze: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    print(f"flag {res['flag']}: {res['treatment']} vs {res['control']}")
    for v, r in res["variants"].items():
        print(
            f"  {v:<12} users {r['users']:>7}  conversions {r['conversions']:>8.0f}  rate {r['rate']:.4f}"
        )
    if res["excluded_mixed_users"]:
        print(
            f"  ({res['excluded_mixed_users']} users saw more than one variant and were left out)"
        )
    verdict = "significant" if res["significant"] else "not significant"
    print(
        f"lift {res['lift']:+.4f}, Welch t = {res['t']:.3f}, p = {res['p_value']:.4g}: {verdict} at alpha {res['alpha']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
