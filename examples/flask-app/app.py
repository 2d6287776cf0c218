"""Flask demo: new_auth_flow for @example.com users, via g.flags (flagsync.flask)."""

from __future__ import annotations

import os
from pathlib import Path

from flagsync.flask import FlagSync
from flask import Flask, Response, g, jsonify, render_template, request, session

REPO = Path(__file__).resolve().parents[2]

flags = FlagSync()


def create_app() -> Flask:
    app = Flask(__name__)
    app.secret_key = os.environ.get("FLASK_SECRET_KEY", "demo-only-not-secret")
    # the snapshot `make run` writes, or e.g. "redis://127.0.0.1:6379/0?prefix=flagsync:quickstart"
    default = str(REPO / "var" / "flags.json")
    app.config["FLAGSYNC_SOURCE"] = os.environ.get("FLAGSYNC_SOURCE", default)
    flags.init_app(app)

    @app.before_request
    def load_user() -> None:
        email = session.get("email")
        g.user = {"id": email, "email": email} if email else None

    @app.post("/session")
    def sign_in() -> Response:
        session["email"] = request.form["email"]
        return jsonify(ok=True)

    @app.get("/login")
    def login() -> str:
        return render_template("login.html")

    @app.get("/api/login-flow")
    def login_flow() -> Response:
        return jsonify(
            new_auth_flow=g.flags.is_active("new_auth_flow"),
            button=g.flags.get("checkout_button_color", "#000000"),
        )

    @app.get("/beta")
    @flags.flag_required("beta_mode")
    def beta() -> Response:
        return jsonify(beta=True)

    return app


if __name__ == "__main__":
    create_app().run(host="127.0.0.1", port=5000)
