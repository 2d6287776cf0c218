"""flagsync.flask with Flask's test client: g.flags, the decorator, Jinja test/global."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_atomic
from flask import Flask, g, render_template_string

from flagsync.canonical import encode_document
from flagsync.flask import FlagSync

FLAGS = {
    "new_auth_flow": {
        "state": "ENABLED",
        "variants": {"on": True, "off": False},
        "defaultVariant": "off",
        "targeting": {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on", "off"]},
    },
    "max_items": {
        "state": "ENABLED",
        "variants": {"few": 5, "many": 50},
        "defaultVariant": "few",
        "targeting": {"if": [{"==": [{"var": "language"}, "de"]}, "many", None]},
    },
}


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    p = tmp_path / "flags.json"
    write_atomic(p, encode_document({"flags": FLAGS}))
    app = Flask(__name__)
    app.config["FLAGSYNC_SOURCE"] = str(p)
    app.config["FLAGSYNC_OPTIONS"] = {"check_interval": 0}
    flags = FlagSync()
    flags.init_app(app)

    @app.before_request
    def load_user() -> None:
        from flask import request

        email = request.headers.get("X-Email")
        g.user = {"id": 7, "email": email} if email else None

    @app.get("/login")
    def login() -> str:
        return "new" if g.flags.is_active("new_auth_flow") else "old"

    @app.get("/items")
    def items() -> str:
        return str(g.flags.get("max_items", 1))

    @app.get("/beta")
    @flags.flag_required("new_auth_flow")
    def beta() -> str:
        return "beta"

    @app.get("/beta2")
    @flags.flag_required("new_auth_flow", redirect_to="/login")
    def beta2() -> str:
        return "beta"

    @app.get("/tpl")
    def tpl() -> str:
        return render_template_string(
            '{% if "new_auth_flow" is flag_active %}A{% else %}B{% endif %}'
            '{% if flag_is_active("new_auth_flow") %}1{% else %}0{% endif %}'
            '{{ flag_value("max_items", 0) }}'
        )

    return app


def test_g_flags(app: Flask) -> None:
    c = app.test_client()
    assert c.get("/login", headers={"X-Email": "a@example.com"}).text == "new"
    assert c.get("/login", headers={"X-Email": "a@else.org"}).text == "old"
    assert c.get("/login").text == "old"
    assert c.get("/items").text == "5"
    assert c.get("/items", headers={"Accept-Language": "de"}).text == "50"


def test_decorator(app: Flask) -> None:
    c = app.test_client()
    assert c.get("/beta", headers={"X-Email": "a@example.com"}).text == "beta"
    assert c.get("/beta").status_code == 404
    r = c.get("/beta2")
    assert r.status_code == 302 and r.headers["Location"].endswith("/login")


def test_jinja(app: Flask) -> None:
    c = app.test_client()
    assert c.get("/tpl", headers={"X-Email": "z@example.com"}).text == "A15"
    assert c.get("/tpl").text == "B05"


def test_missing_config() -> None:
    with pytest.raises(RuntimeError, match="FLAGSYNC_SOURCE"):
        FlagSync(Flask("x"))
