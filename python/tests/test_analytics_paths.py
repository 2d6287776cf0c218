"""With analytics on, every evaluation path records exactly one CSV row: the store's
is_active/get/evaluate, Flask's g.flags and Jinja helpers, FastAPI's Depends, Django's
flag_is_active and an OpenFeature client (even with the hook also added to the client).
The flags are what the real daemon published to a real redis-server."""

from __future__ import annotations

import csv
import glob
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import RedisServer, publish_quickstart

from flagsync import Type, open_store
from flagsync.analytics import EvaluationRecorder
from flagsync.openfeature import AnalyticsHook

PREFIX = "flagsync:analytics"
ANN = {"targetingKey": "42", "email": "ann@example.com", "plan": "pro"}


@pytest.fixture
def source(go_cli: Path, tmp_path: Path, redis_server: RedisServer) -> str:
    publish_quickstart(go_cli, tmp_path, redis_server.url, PREFIX)
    return f"{redis_server.url}?prefix={PREFIX}"


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[AnalyticsHook]:
    hook = AnalyticsHook(tmp_path / "evals", attributes=["plan"])
    yield hook
    hook.close()


def rows(rec: EvaluationRecorder) -> list[dict[str, str]]:
    assert rec.flush(timeout=10)
    out: list[dict[str, str]] = []
    for f in sorted(glob.glob(f"{rec.directory}/*.csv")):
        with open(f, newline="", encoding="utf-8") as fh:
            out.extend(csv.DictReader(fh))
    return out


def brief(rs: list[dict[str, str]]) -> list[tuple[str, str, str, str, str]]:
    return [
        (r["flag_key"], r["variant"], r["value"], r["targeting_key"], r["attr_plan"]) for r in rs
    ]


def test_store_methods_record_once_each(source: str, recorder: AnalyticsHook) -> None:
    store = open_store(source, analytics=recorder)
    try:
        assert store.analytics is recorder
        assert store.is_active("new_auth_flow", ANN) is True
        assert store.get("checkout_button_color", "#000", ANN) == "#1f6feb"
        r = store.evaluate(
            "new_dashboard", Type.BOOLEAN, False, {"plan": "free"}, targeting_key="7"
        )
        assert r.value is False
        assert store.get("no_such_flag", 3) == 3
        got = rows(recorder)
        assert brief(got) == [
            ("new_auth_flow", "on", "true", "42", "pro"),
            ("checkout_button_color", "blue", "#1f6feb", "42", "pro"),
            ("new_dashboard", "off", "false", "7", "free"),
            ("no_such_flag", "", "3", "", ""),
        ]
        assert got[3]["error_code"] == "FLAG_NOT_FOUND" and got[3]["reason"] == "ERROR"
        assert got[0]["reason"] == "TARGETING_MATCH" and got[0]["error_code"] == ""
        store.analytics = None  # off again: nothing more is recorded
        store.is_active("new_auth_flow", ANN)
        assert len(rows(recorder)) == 4
    finally:
        store.close()
    assert recorder.dropped == 0


def test_flask_g_flags_and_templates_record_once(source: str, recorder: AnalyticsHook) -> None:
    from flask import Flask, g, render_template_string

    from flagsync.flask import FlagSync

    app = Flask("analytics")
    app.config["FLAGSYNC_SOURCE"] = source
    app.config["FLAGSYNC_OPTIONS"] = {"analytics": recorder}
    flags = FlagSync(app)

    @app.before_request
    def load_user() -> None:
        g.user = {"id": 42, "email": "ann@example.com"}

    @app.get("/login")
    def login() -> str:
        return "new" if g.flags.is_active("new_auth_flow") else "old"

    @app.get("/tpl")
    def tpl() -> str:
        return render_template_string(
            '{% if flag_is_active("new_dashboard") %}A{% else %}B{% endif %}'
        )

    try:
        c = app.test_client()
        assert c.get("/login").text == "new"
        assert c.get("/tpl").text == "B"
        assert brief(rows(recorder)) == [
            ("new_auth_flow", "on", "true", "42", ""),
            ("new_dashboard", "off", "false", "42", ""),
        ]
    finally:
        flags.store.close()


def test_fastapi_depends_records_once(source: str, recorder: AnalyticsHook) -> None:
    from fastapi import Depends, FastAPI
    from fastapi.testclient import TestClient

    from flagsync.fastapi import FlagSync

    flags = FlagSync(
        source, user=lambda: {"id": 42, "email": "ann@example.com"}, analytics=recorder
    )
    app = FastAPI(lifespan=flags.lifespan)

    @app.get("/login")
    async def login(on: bool = Depends(flags.dependency("new_auth_flow"))) -> bool:
        return on

    with TestClient(app) as c:
        assert c.get("/login").json() is True
    assert brief(rows(recorder)) == [("new_auth_flow", "on", "true", "42", "")]


def test_django_flag_is_active_records_once(source: str, recorder: AnalyticsHook) -> None:
    from django.contrib.auth.models import AnonymousUser
    from django.test import RequestFactory, override_settings

    from flagsync.django import flag_is_active, reset

    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    try:
        with override_settings(FLAGSYNC={"SOURCE": source, "OPTIONS": {"analytics": recorder}}):
            assert flag_is_active(request, "new_auth_flow") is False
    finally:
        reset()
    assert brief(rows(recorder)) == [("new_auth_flow", "off", "false", "", "")]


def test_openfeature_client_records_once(source: str, recorder: AnalyticsHook) -> None:
    from openfeature import api
    from openfeature.evaluation_context import EvaluationContext

    from flagsync.openfeature import FlagSyncProvider

    domain = "analytics-paths"
    provider = FlagSyncProvider(open_store(source, analytics=recorder))
    api.set_provider(provider, domain)
    try:
        client = api.get_client(domain)
        # the hook on the client as well: the store already recorded the evaluation
        client.add_hooks([recorder])
        ec = EvaluationContext("42", {"email": "ann@example.com", "plan": "pro"})
        assert client.get_boolean_value("new_auth_flow", False, ec) is True
        assert client.get_string_value("checkout_button_color", "", ec) == "#1f6feb"
        assert brief(rows(recorder)) == [
            ("new_auth_flow", "on", "true", "42", "pro"),
            ("checkout_button_color", "blue", "#1f6feb", "42", "pro"),
        ]
    finally:
        api.clear_providers()


def test_openfeature_hook_records_what_no_store_recorded(
    source: str, recorder: AnalyticsHook
) -> None:
    """Without analytics on the store (the hook-only set-up), and for other providers,
    the hook records each evaluation once."""
    from openfeature import api
    from openfeature.evaluation_context import EvaluationContext
    from openfeature.provider.in_memory_provider import InMemoryFlag, InMemoryProvider

    from flagsync.openfeature import FlagSyncProvider

    api.set_provider(FlagSyncProvider(open_store(source)), "plain-store")
    api.set_provider(InMemoryProvider({"other": InMemoryFlag("on", {"on": True})}), "other")
    try:
        ec = EvaluationContext("42", {"email": "ann@example.com", "plan": "pro"})
        c1 = api.get_client("plain-store")
        c1.add_hooks([recorder])
        c2 = api.get_client("other")
        c2.add_hooks([recorder])
        assert c1.get_boolean_value("new_auth_flow", False, ec) is True
        assert c2.get_boolean_value("other", False, ec) is True
        assert brief(rows(recorder)) == [
            ("new_auth_flow", "on", "true", "42", "pro"),
            ("other", "on", "true", "42", "pro"),
        ]
    finally:
        api.clear_providers()


def test_hook_records_what_the_sdk_answered_without_the_store(
    source: str, recorder: AnalyticsHook
) -> None:
    """An evaluation the SDK answers itself (provider not ready or fatal) never reached
    the store, so the hook records it even when the store records the rest."""
    from openfeature.evaluation_context import EvaluationContext
    from openfeature.exception import ErrorCode
    from openfeature.flag_evaluation import FlagEvaluationDetails, FlagType, Reason
    from openfeature.hook import HookContext

    from flagsync.openfeature import FlagSyncProvider

    provider = FlagSyncProvider(open_store(source, analytics=recorder))
    try:
        hc = HookContext(
            "new_auth_flow",
            FlagType.BOOLEAN,
            False,
            EvaluationContext("42"),
            provider_metadata=provider.get_metadata(),
        )
        served = FlagEvaluationDetails("new_auth_flow", True, "on", reason=Reason.TARGETING_MATCH)
        recorder.finally_after(hc, served, {})  # the store recorded this one: skipped
        for code in (ErrorCode.PROVIDER_NOT_READY, ErrorCode.PROVIDER_FATAL):
            d = FlagEvaluationDetails(
                "new_auth_flow", False, None, reason=Reason.ERROR, error_code=code
            )
            recorder.finally_after(hc, d, {})
        got = rows(recorder)
        assert [(r["flag_key"], r["error_code"]) for r in got] == [
            ("new_auth_flow", "PROVIDER_NOT_READY"),
            ("new_auth_flow", "PROVIDER_FATAL"),
        ]
    finally:
        provider.shutdown()


def test_recorder_without_openfeature_imports(tmp_path: Path) -> None:
    """flagsync.analytics records store evaluations without the OpenFeature SDK."""
    import subprocess
    import sys

    code = (
        "import sys, flagsync.analytics as a\n"
        "assert not [m for m in sys.modules if m.startswith('openfeature')]\n"
        "print(a.EvaluationRecorder.__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "EvaluationRecorder"


def test_a_failing_recorder_never_fails_the_evaluation(
    source: str, recorder: AnalyticsHook, caplog: pytest.LogCaptureFixture
) -> None:
    """A context attribute that raises when read (a lazy database lookup, say) loses that
    row, loudly, and the app still gets its answer; the next evaluation is recorded."""
    from flagsync._context import LazyContext

    def broken() -> Any:
        raise RuntimeError("database is down")

    store = open_store(source, analytics=recorder)
    try:
        ctx = LazyContext({"targetingKey": "42", "email": "ann@example.com"}, {"plan": broken})
        assert store.is_active("new_auth_flow", ctx) is True
        assert "analytics could not record an evaluation of new_auth_flow" in caplog.text
        assert store.is_active("new_auth_flow", ANN) is True
        assert brief(rows(recorder)) == [("new_auth_flow", "on", "true", "42", "pro")]
    finally:
        store.close()
