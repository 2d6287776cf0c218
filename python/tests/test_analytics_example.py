"""Runs examples/analytics/analyze.py on a synthetic experiment recorded with the real
AnalyticsHook: a big effect must come out significant, no effect must not."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import FlagEvaluationDetails, FlagType, Reason
from openfeature.hook import HookContext

from flagsync.analytics import AnalyticsHook

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "analytics" / "analyze.py"
SALT = "experiment-salt"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("analyze", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _experiment(tmp: Path, p_off: float, p_on: float, seed: int, users: int = 4000) -> None:
    """Records each user's evaluations (2 per user, 5 users switched variant) and writes
    conversions.csv with raw user ids."""
    rng = np.random.default_rng(seed)
    hook = AnalyticsHook(tmp / "evals", hash_targeting_key=True, salt=SALT)
    converted = []
    for i in range(users):
        uid = f"user-{i}"
        variant = "on" if rng.random() < 0.5 else "off"
        hc = HookContext("new_checkout", FlagType.BOOLEAN, False, EvaluationContext(uid))
        d = FlagEvaluationDetails("new_checkout", variant == "on", variant, reason=Reason.SPLIT)
        hook.finally_after(hc, d, {})
        hook.finally_after(hc, d, {})
        if i < 5:  # rollout changed under these users: excluded from the analysis
            other = "off" if variant == "on" else "on"
            hook.finally_after(hc, FlagEvaluationDetails("new_checkout", other == "on", other), {})
        if rng.random() < (p_on if variant == "on" else p_off):
            converted.append(uid)
    other_hc = HookContext("unrelated", FlagType.BOOLEAN, False, EvaluationContext("user-1"))
    hook.finally_after(other_hc, FlagEvaluationDetails("unrelated", True, "x"), {})
    assert hook.close(timeout=10)
    assert hook.dropped == 0
    pd.DataFrame({"targeting_key": converted}).to_csv(tmp / "conversions.csv", index=False)


def test_big_effect_is_significant(tmp_path: Path) -> None:
    _experiment(tmp_path, p_off=0.10, p_on=0.20, seed=1)
    mod = _load()
    evals = mod.load_evaluations(str(tmp_path / "evals"))
    outcomes = pd.read_csv(tmp_path / "conversions.csv", dtype=str)
    res = mod.analyze(evals, outcomes, "new_checkout", control="off", treatment="on", salt=SALT)
    assert res["significant"] and res["p_value"] < 0.001
    assert res["excluded_mixed_users"] == 5
    assert sum(v["users"] for v in res["variants"].values()) == 4000 - 5
    assert 0.07 < res["variants"]["off"]["rate"] < 0.13
    assert 0.16 < res["variants"]["on"]["rate"] < 0.24
    assert 0.05 < res["lift"] < 0.15


def test_no_effect_is_not_significant(tmp_path: Path) -> None:
    _experiment(tmp_path, p_off=0.15, p_on=0.15, seed=2)
    mod = _load()
    evals = mod.load_evaluations(str(tmp_path / "evals"))
    outcomes = pd.read_csv(tmp_path / "conversions.csv", dtype=str)
    res = mod.analyze(evals, outcomes, "new_checkout", control="off", treatment="on", salt=SALT)
    assert not res["significant"] and res["p_value"] > 0.05
    assert abs(res["lift"]) < 0.03


def test_without_salt_ids_do_not_join(tmp_path: Path) -> None:
    _experiment(tmp_path, p_off=0.10, p_on=0.20, seed=3, users=500)
    mod = _load()
    evals = mod.load_evaluations(str(tmp_path / "evals"))
    outcomes = pd.read_csv(tmp_path / "conversions.csv", dtype=str)
    res = mod.analyze(evals, outcomes, "new_checkout", control="off", treatment="on")
    assert all(v["conversions"] == 0 for v in res["variants"].values())


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _experiment(tmp_path, p_off=0.10, p_on=0.20, seed=1)
    args = [
        "--evaluations",
        str(tmp_path / "evals" / "*.csv"),
        "--outcomes",
        str(tmp_path / "conversions.csv"),
        "--flag",
        "new_checkout",
        "--salt",
        SALT,
    ]
    # One real run of the script as a program...
    out = subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--json"], capture_output=True, text=True, check=True
    ).stdout
    res = json.loads(out)
    assert res["significant"] and res["control"] == "off" and res["treatment"] == "on"
    # ...the other modes in process (importing pandas and scipy again is slow).
    mod = _load()
    assert mod.main(args) == 0
    text = capsys.readouterr().out
    assert "significant at alpha 0.05" in text and "5 users saw more than one variant" in text
    assert mod.main([*args[:4], "--flag", "nope"]) == 2
    assert "no successful evaluations" in capsys.readouterr().err


@pytest.mark.parametrize("missing", ["evals-none"])
def test_missing_files(tmp_path: Path, missing: str) -> None:
    mod = _load()
    with pytest.raises(FileNotFoundError):
        mod.load_evaluations(str(tmp_path / missing))
