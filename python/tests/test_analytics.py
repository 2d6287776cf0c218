"""Tests of flagsync.analytics: the CSV format (byte-identical to the Go hook, via the
shared golden files in analytics/testdata), recording through the OpenFeature SDK,
rotation, the bounded buffer, close and fork safety."""

from __future__ import annotations

import csv
import glob
import io
import json
import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import FlagEvaluationDetails, FlagType, Reason
from openfeature.hook import HookContext
from openfeature.provider.in_memory_provider import InMemoryFlag, InMemoryProvider

from flagsync.analytics import AnalyticsHook, format_row, format_value, header

GOLDEN = Path(__file__).resolve().parents[2] / "analytics" / "testdata"


def _ns(iso: str) -> int:
    dt = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    delta = dt - epoch
    return (delta.days * 86400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def test_golden_rows_match_go() -> None:
    spec = json.loads((GOLDEN / "golden.json").read_text(encoding="utf-8"))
    for cfg in spec["configs"]:
        hook = AnalyticsHook(
            "/tmp/flagsync-analytics-unused",
            attributes=cfg["attributes"],
            hash_targeting_key=cfg["hash"],
            salt=cfg["salt"],
        )
        try:
            out = header(cfg["attributes"]) + "\n"
            for c in spec["cases"]:
                attrs = [c["attrs"].get(a) for a in cfg["attributes"]]
                out += format_row(
                    _ns(c["at"]),
                    c["flag"],
                    c["variant"],
                    c["value"],
                    c["reason"],
                    c["errorCode"],
                    hook._targeting(c["targetingKey"]),
                    attrs,
                )
        finally:
            hook.close()
        want = (GOLDEN / f"golden-{cfg['name']}.csv").read_bytes()
        assert out.encode() == want, cfg["name"]
        rows = list(csv.reader(io.StringIO(out)))
        assert len(rows) == len(spec["cases"]) + 1
        assert all(len(r) == 7 + len(cfg["attributes"]) for r in rows)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (True, "true"),
        (False, "false"),
        (3, "3"),
        (3.0, "3"),
        (0.1, "0.1"),
        (-0.0, "0"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (1.5e-7, "1.5e-07"),
        (0.000001, "0.000001"),
        (float("nan"), "NaN"),
        ({"b": 1.0, "a": "<&>"}, '{"a":"<&>","b":1}'),
        ([None, "\x01"], '[null,"\\u0001"]'),
    ],
)
def test_format_value(value: Any, text: str) -> None:
    assert format_value(value) == text


def _read(directory: Path, attributes: list[str]) -> tuple[list[str], list[list[str]]]:
    files = sorted(glob.glob(str(directory / "*.csv")))
    rows: list[list[str]] = []
    for f in files:
        with open(f, newline="", encoding="utf-8") as fh:
            recs = list(csv.reader(fh))
        assert recs[0] == header(attributes).split(","), f
        rows.extend(recs[1:])
    return files, rows


@pytest.fixture
def client() -> Any:
    domain = f"analytics-{os.getpid()}-{threading.get_ident()}"
    api.set_provider(
        InMemoryProvider(
            {
                "checkout_v2": InMemoryFlag("on", {"on": True, "off": False}),
            }
        ),
        domain,
    )
    yield api.get_client(domain)


def test_hook_records_evaluations(tmp_path: Path, client: Any) -> None:
    hook = AnalyticsHook(tmp_path, attributes=["plan"], hash_targeting_key=True, salt="pepper")
    client.add_hooks([hook])
    ec = EvaluationContext("user-1", {"plan": "pro", "email": "not@recorded"})
    assert client.get_boolean_value("checkout_v2", False, ec) is True
    client.get_boolean_value("missing", False, ec)
    assert hook.flush(timeout=5)
    _, rows = _read(tmp_path, ["plan"])
    assert len(rows) == 2
    ts, flag, variant, value, reason, code, tk, plan = rows[0]
    assert (flag, variant, value, reason, code, plan) == (
        "checkout_v2",
        "on",
        "true",
        "STATIC",
        "",
        "pro",
    )
    assert tk == hook._targeting("user-1") and len(tk) == 64 and tk != "user-1"
    assert datetime.fromisoformat(ts.replace("Z", "+00:00")).tzinfo is not None
    assert rows[1][1] == "missing" and rows[1][4] == "ERROR" and rows[1][5] == "FLAG_NOT_FOUND"
    assert "not@recorded" not in (tmp_path.glob("*.csv").__next__()).read_text()
    assert hook.close(timeout=5)
    client.get_boolean_value("checkout_v2", False, ec)
    assert hook.dropped == 1 and hook.written == 2


def test_rotation_by_size_and_age(tmp_path: Path) -> None:
    now = [_ns("2026-06-01T00:00:00Z")]
    hook = AnalyticsHook(
        tmp_path,
        attributes=["plan"],
        max_bytes=1000,
        max_age=3600,
        flush_interval=3600,
        clock=lambda: now[0],
    )
    hc = HookContext("f", FlagType.BOOLEAN, False, EvaluationContext("user-1", {"plan": "pro"}))
    details = FlagEvaluationDetails("f", True, "on", reason=Reason.TARGETING_MATCH)
    for _ in range(50):
        hook.finally_after(hc, details, {})
    assert hook.flush(timeout=5)
    by_size, _ = _read(tmp_path, ["plan"])
    now[0] += 2 * 3600 * 10**9
    hook.finally_after(hc, details, {})
    assert hook.close(timeout=5)
    files, rows = _read(tmp_path, ["plan"])
    assert len(by_size) >= 3
    assert len(files) == len(by_size) + 1
    assert len(rows) == 51 and hook.dropped == 0
    assert all(os.path.getsize(f) <= 1200 for f in files)


def test_drops_when_full_never_blocks(tmp_path: Path) -> None:
    hook = AnalyticsHook(tmp_path, buffer_size=10)
    gate = threading.Event()
    write = hook._write

    def stuck_write(rec: Any) -> None:  # a writer stuck on a slow disk
        gate.wait()
        write(rec)

    hook._write = stuck_write  # type: ignore[method-assign]
    hc = HookContext("f", FlagType.BOOLEAN, False, EvaluationContext("u"))
    details = FlagEvaluationDetails("f", True, "on")
    n = 5000
    for _ in range(n):
        hook.finally_after(hc, details, {})
    assert hook.dropped >= n - 20
    gate.set()
    assert hook.flush(timeout=5)
    assert hook.dropped + hook.written == n
    hook.close()


def test_concurrent_threads(tmp_path: Path) -> None:
    hook = AnalyticsHook(tmp_path, attributes=["plan"], buffer_size=1 << 16)
    hc_by_thread = [
        HookContext("f", FlagType.BOOLEAN, False, EvaluationContext("u", {"plan": i}))
        for i in range(4)
    ]
    details = FlagEvaluationDetails("f", True, "on")

    def work(i: int) -> None:
        for _ in range(500):
            hook.finally_after(hc_by_thread[i], details, {})

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert hook.close(timeout=5)
    _, rows = _read(tmp_path, ["plan"])
    assert len(rows) == 2000 and hook.dropped == 0
    assert sorted({r[7] for r in rows}) == ["0", "1", "2", "3"]


def test_fork_safety(tmp_path: Path) -> None:
    hook = AnalyticsHook(tmp_path, flush_interval=3600)
    hc = HookContext("parent_flag", FlagType.BOOLEAN, False, EvaluationContext("p"))
    details = FlagEvaluationDetails("parent_flag", True, "on")
    for _ in range(10):
        hook.finally_after(hc, details, {})
    assert hook.flush(timeout=5)
    # Pending (unwritten) rows at fork time stay the parent's.
    for _ in range(5):
        hook.finally_after(hc, details, {})
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            child_hc = HookContext("child_flag", FlagType.BOOLEAN, False, EvaluationContext("c"))
            child_details = FlagEvaluationDetails("child_flag", False, "off")
            for _ in range(3):
                hook.finally_after(child_hc, child_details, {})
            code = 0 if hook.close(timeout=5) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert hook.close(timeout=5)
    files, rows = _read(tmp_path, [])
    child_files = [f for f in files if f"-{pid}-" in f]
    parent_files = [f for f in files if f"-{os.getpid()}-" in f]
    assert len(child_files) == 1 and len(parent_files) == 1
    flags = [r[1] for r in rows]
    assert flags.count("parent_flag") == 15  # none lost, none written twice
    assert flags.count("child_flag") == 3
    with open(child_files[0], encoding="utf-8") as fh:
        assert "parent_flag" not in fh.read()
