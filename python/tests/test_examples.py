"""Smoke tests of examples/{django,flask,fastapi}-app on a snapshot made from the quickstart
flags (what `make run` publishes to var/flags.json)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from conftest import REPO

from flagsync.canonical import encode_document
from flagsync.flagset import compile_document, parse

EXAMPLES = REPO / "examples"


def quickstart_snapshot(path: Path, beta: bool = False) -> Path:
    doc = parse((EXAMPLES / "quickstart" / "flags.yaml").read_bytes())
    if beta:
        doc["flags"]["beta_mode"]["defaultVariant"] = "on"
    doc["metadata"] = {"flagSetId": "quickstart"}
    fs, problems = compile_document(doc)
    assert problems == []
    path.write_bytes(encode_document(fs.document))
    return path


@pytest.fixture
def source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    p = quickstart_snapshot(tmp_path / "flags.json")
    monkeypatch.setenv("FLAGSYNC_SOURCE", str(p))
    yield p


def load_module(name: str, path: Path) -> ModuleType:
    sys.path.insert(0, str(path.parent))
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod  # Flask finds its templates through the module
        spec.loader.exec_module(mod)
        return mod
    finally:
        sys.path.remove(str(path.parent))


DJANGO_SMOKE = r"""
import json, django
django.setup()
from django.core.management import call_command
from django.contrib.auth.models import User
from django.test import Client
call_command("migrate", verbosity=0)
out = {}
for email in ("alice@example.com", "carol@other.org"):
    c = Client()
    c.force_login(User.objects.create(username=email, email=email))
    out[email] = {
        "home": c.get("/").content.decode().strip(),
        "login": c.get("/login/").content.decode().strip(),
        "beta": c.get("/beta/").status_code,
        "reports": c.get("/reports/").status_code,
        "api": json.loads(c.get("/api/flags/").content),
        "beta_api": c.get("/api/beta/").status_code,
    }
print(json.dumps(out))
"""


def test_django_app(source: Path, tmp_path: Path) -> None:
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="demo.settings",
        DEMO_DB=str(tmp_path / "demo.sqlite3"),
        FLAGSYNC_SOURCE=str(source),
    )
    r = subprocess.run(
        [sys.executable, "-c", DJANGO_SMOKE],
        cwd=EXAMPLES / "django-app",
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    alice, carol = out["alice@example.com"], out["carol@other.org"]
    assert alice["home"] == "<h1>New dashboard</h1>"
    assert carol["home"] == "<h1>Dashboard</h1>"
    assert 'id="new-login"' in alice["login"] and 'id="old-login"' in carol["login"]
    assert alice["beta"] == carol["beta"] == 404
    assert alice["reports"] == 200 and carol["reports"] == 302
    assert alice["api"]["new_dashboard"] is True and carol["api"]["new_dashboard"] is False
    assert alice["api"]["checkout_button_color"] == "#1f6feb"
    assert alice["beta_api"] == carol["beta_api"] == 404


def test_flask_app(source: Path) -> None:
    mod = load_module("flagsync_flask_demo", EXAMPLES / "flask-app" / "app.py")
    app = mod.create_app()
    c = app.test_client()
    assert 'id="old-login"' in c.get("/login").text
    c.post("/session", data={"email": "ann@example.com"})
    assert 'id="new-login"' in c.get("/login").text
    assert c.get("/api/login-flow").json == {"new_auth_flow": True, "button": "#1f6feb"}
    assert c.get("/beta").status_code == 404


def test_fastapi_app(source: Path) -> None:
    from fastapi.testclient import TestClient

    mod = load_module("flagsync_fastapi_demo", EXAMPLES / "fastapi-app" / "main.py")
    with TestClient(mod.app) as c:
        r = c.get("/items").json()
        assert r["beta_mode"] is False and [i["id"] for i in r["items"]] == [1]
        r = c.get("/checkout", headers={"Authorization": "Bearer ann-token"})
        assert r.json()["new_auth_flow"] is True
        assert r.json()["button_color"] == "#1f6feb"
        spoofed = {"X-User-Id": "42", "X-User-Email": "ann@example.com"}
        assert c.get("/checkout", headers=spoofed).json()["new_auth_flow"] is False
        carol = c.get("/checkout", headers={"Authorization": "Bearer carol-token", **spoofed})
        assert carol.json()["new_auth_flow"] is False


def test_fastapi_app_beta_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    p = quickstart_snapshot(tmp_path / "beta.json", beta=True)
    monkeypatch.setenv("FLAGSYNC_SOURCE", str(p))
    mod = load_module("flagsync_fastapi_demo_beta", EXAMPLES / "fastapi-app" / "main.py")
    with TestClient(mod.app) as c:
        assert [i["id"] for i in c.get("/items").json()["items"]] == [1, 2]
