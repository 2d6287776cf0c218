"""Where the Flask and FastAPI integrations take a request's identity from, with each
framework's own test client, on what the real daemon published to a real redis-server.

The quickstart flag new_auth_flow is on for emails ending in @example.com. A client that
sends identity headers (X-User-Email: attacker@example.com, …) must not turn it on: by
default identity comes only from the app's own authentication. Headers count only when
the app opts in with header_context()."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import RedisServer, publish_quickstart

PREFIX = "flagsync:web"

# Every header a proxy or a client might use to claim an identity.
SPOOFED = {
    "X-User-Id": "1",
    "X-User-Email": "attacker@example.com",
    "X-Email": "attacker@example.com",
    "X-Forwarded-User": "attacker@example.com",
    "X-Forwarded-Email": "attacker@example.com",
    "X-Auth-Request-Email": "attacker@example.com",
    "X-Remote-User": "attacker@example.com",
    "Remote-User": "attacker@example.com",
}

# The apps' own "authentication": bearer tokens known to the server.
USERS = {
    "ann-token": {"id": 42, "email": "ann@example.com", "username": "ann"},
    "carol-token": {"id": 43, "email": "carol@else.org", "username": "carol"},
}


@pytest.fixture
def source(go_cli: Path, tmp_path: Path, redis_server: RedisServer) -> str:
    publish_quickstart(go_cli, tmp_path, redis_server.url, PREFIX)
    return f"{redis_server.url}?prefix={PREFIX}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- FastAPI ------------------------------------------------------------------------------


def fastapi_app(flags: Any, middleware: Callable[[Any], None] | None = None) -> Any:
    from fastapi import Depends, FastAPI

    from flagsync.fastapi import RequestFlags

    app = FastAPI(lifespan=flags.lifespan)
    if middleware is not None:
        middleware(app)

    @app.get("/login")
    async def login(on: bool = Depends(flags.dependency("new_auth_flow"))) -> dict[str, Any]:
        return {"new": on}

    @app.get("/ctx")
    async def ctx(f: RequestFlags = Depends(flags.request_flags)) -> dict[str, Any]:
        return {"ctx": dict(f.context), "new": f.is_active("new_auth_flow")}

    return app


def state_user_middleware(app: Any) -> None:
    """The FastAPI/Starlette idiom: an auth middleware puts the user on request.state."""

    @app.middleware("http")
    async def authenticate(request: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
        auth = request.headers.get("authorization", "")
        request.state.user = USERS.get(auth.removeprefix("Bearer "))
        return await call_next(request)


def starlette_auth_middleware(app: Any) -> None:
    """Starlette's AuthenticationMiddleware: request.user (scope["user"])."""
    from starlette.authentication import (
        AuthCredentials,
        AuthenticationBackend,
        BaseUser,
    )
    from starlette.middleware.authentication import AuthenticationMiddleware

    class User(BaseUser):
        def __init__(self, data: dict[str, Any]) -> None:
            self.id = data["id"]
            self.email = data["email"]

        @property
        def is_authenticated(self) -> bool:
            return True

    class Backend(AuthenticationBackend):
        async def authenticate(self, conn: Any) -> tuple[AuthCredentials, BaseUser] | None:
            data = USERS.get(conn.headers.get("authorization", "").removeprefix("Bearer "))
            return None if data is None else (AuthCredentials(["authenticated"]), User(data))

    app.add_middleware(AuthenticationMiddleware, backend=Backend())


def test_fastapi_default_ignores_identity_headers(source: str) -> None:
    from fastapi.testclient import TestClient

    from flagsync.fastapi import FlagSync

    with TestClient(fastapi_app(FlagSync(source))) as c:
        assert c.get("/login", headers=SPOOFED).json() == {"new": False}
        r = c.get("/ctx", headers={**SPOOFED, "Accept-Language": "de-DE,de;q=0.9"}).json()
        assert r == {"ctx": {"language": "de-DE"}, "new": False}


def test_fastapi_request_state_user(source: str) -> None:
    from fastapi.testclient import TestClient

    from flagsync.fastapi import FlagSync

    app = fastapi_app(FlagSync(source), state_user_middleware)
    with TestClient(app) as c:
        assert c.get("/login", headers=bearer("ann-token")).json() == {"new": True}
        assert c.get("/login", headers=SPOOFED).json() == {"new": False}
        # a header does not override the authenticated user
        r = c.get("/ctx", headers={**SPOOFED, **bearer("carol-token")}).json()
        assert r["new"] is False
        assert r["ctx"] == {"targetingKey": "43", "email": "carol@else.org", "username": "carol"}


def test_fastapi_starlette_authentication_middleware(source: str) -> None:
    from fastapi.testclient import TestClient

    from flagsync.fastapi import FlagSync

    app = fastapi_app(FlagSync(source), starlette_auth_middleware)
    with TestClient(app) as c:
        assert c.get("/login", headers=bearer("ann-token")).json() == {"new": True}
        r = c.get("/ctx", headers=SPOOFED).json()  # UnauthenticatedUser: no identity
        assert r == {"ctx": {}, "new": False}


def test_fastapi_app_named_dependency(source: str) -> None:
    from fastapi import Depends
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
    from fastapi.testclient import TestClient

    from flagsync.fastapi import FlagSync

    calls: list[str] = []
    scheme = HTTPBearer(auto_error=False)

    def current_user(
        cred: HTTPAuthorizationCredentials | None = Depends(scheme),
    ) -> dict[str, Any] | None:
        calls.append("auth")
        return USERS.get(cred.credentials) if cred else None

    flags = FlagSync(source, user=current_user)
    app = fastapi_app(flags, state_user_middleware)

    @app.get("/both")
    async def both(
        on: bool = Depends(flags.dependency("new_auth_flow")),
        user: dict[str, Any] | None = Depends(current_user),
    ) -> dict[str, Any]:
        return {"new": on, "user": user and user["username"]}

    with TestClient(app) as c:
        assert c.get("/login", headers=bearer("ann-token")).json() == {"new": True}
        assert c.get("/login", headers=SPOOFED).json() == {"new": False}
        r = c.get("/ctx", headers={**SPOOFED, **bearer("carol-token")}).json()
        assert r["new"] is False and r["ctx"]["email"] == "carol@else.org"
        calls.clear()
        # FastAPI runs the app's dependency once per request, shared with the view
        assert c.get("/both", headers=bearer("ann-token")).json() == {"new": True, "user": "ann"}
        assert calls == ["auth"]


def test_fastapi_named_dependency_wins_over_state_user(source: str) -> None:
    """The app named where identity comes from: an anonymous answer stays anonymous even
    when request.state.user is set by another middleware."""
    from fastapi.testclient import TestClient

    from flagsync.fastapi import FlagSync

    app = fastapi_app(FlagSync(source, user=lambda: None), state_user_middleware)
    with TestClient(app) as c:
        assert c.get("/ctx", headers=bearer("ann-token")).json() == {"ctx": {}, "new": False}


def test_fastapi_header_context_is_opt_in(source: str) -> None:
    from fastapi.testclient import TestClient

    from flagsync.fastapi import FlagSync, header_context

    flags = FlagSync(source, context_builder=header_context())
    with TestClient(fastapi_app(flags)) as c:
        assert c.get("/login", headers={"X-User-Email": "ann@example.com"}).json() == {"new": True}
        r = c.get("/ctx", headers={"X-User-Id": "7", "X-User-Email": "x@else.org"}).json()
        assert r["ctx"] == {"targetingKey": "7", "email": "x@else.org"}
    custom = FlagSync(source, context_builder=header_context({"email": "X-Verified-Email"}))
    with TestClient(fastapi_app(custom)) as c:
        assert c.get("/login", headers=SPOOFED).json() == {"new": False}
        assert c.get("/login", headers={"X-Verified-Email": "a@example.com"}).json() == {
            "new": True
        }


# -- Flask --------------------------------------------------------------------------------


@pytest.fixture
def flask_app_factory(source: str) -> Iterator[Callable[..., Any]]:
    from flask import Flask, g

    apps: list[Any] = []

    def make(**kwargs: Any) -> Any:
        from flagsync.flask import FlagSync

        app = Flask(f"identity{len(apps)}")
        app.secret_key = "test"
        app.config["FLAGSYNC_SOURCE"] = source
        flags = FlagSync(app, **kwargs)
        apps.append(flags)

        @app.get("/login")
        def login() -> str:
            return "new" if g.flags.is_active("new_auth_flow") else "old"

        @app.get("/ctx")
        def ctx() -> dict[str, Any]:
            return dict(g.flags.context)

        return app

    yield make
    for flags in apps:
        flags.store.close()


def test_flask_default_ignores_identity_headers(flask_app_factory: Callable[..., Any]) -> None:
    c = flask_app_factory().test_client()
    assert c.get("/login", headers=SPOOFED).text == "old"
    assert c.get("/ctx", headers={**SPOOFED, "Accept-Language": "de"}).json == {"language": "de"}


def test_flask_g_user(flask_app_factory: Callable[..., Any]) -> None:
    from flask import g, request

    app = flask_app_factory()

    @app.before_request
    def load_user() -> None:
        g.user = USERS.get(request.headers.get("Authorization", "").removeprefix("Bearer "))

    c = app.test_client()
    assert c.get("/login", headers=bearer("ann-token")).text == "new"
    assert c.get("/login", headers={**SPOOFED, **bearer("carol-token")}).text == "old"
    assert c.get("/login", headers=SPOOFED).text == "old"


def test_flask_login_current_user(flask_app_factory: Callable[..., Any]) -> None:
    from flask_login import LoginManager, UserMixin, login_user, logout_user

    class User(UserMixin):
        def __init__(self, data: dict[str, Any]) -> None:
            self.id = data["id"]
            self.email = data["email"]

    by_id = {str(u["id"]): u for u in USERS.values()}
    app = flask_app_factory()
    lm = LoginManager(app)

    @lm.user_loader
    def load(uid: str) -> User | None:
        data = by_id.get(uid)
        return None if data is None else User(data)

    @app.post("/signin/<token>")
    def signin(token: str) -> str:
        login_user(User(USERS[token]))
        return "ok"

    @app.post("/signout")
    def signout() -> str:
        logout_user()
        return "ok"

    c = app.test_client()
    assert c.get("/login", headers=SPOOFED).text == "old"  # anonymous
    c.post("/signin/ann-token")
    assert c.get("/login").text == "new"
    assert c.get("/ctx").json == {"targetingKey": "42", "email": "ann@example.com"}
    c.post("/signout")
    c.post("/signin/carol-token")
    assert c.get("/login", headers=SPOOFED).text == "old"


def test_flask_app_named_user(flask_app_factory: Callable[..., Any]) -> None:
    from flask import request

    def user() -> dict[str, Any] | None:
        return USERS.get(request.headers.get("Authorization", "").removeprefix("Bearer "))

    c = flask_app_factory(user=user).test_client()
    assert c.get("/login", headers=bearer("ann-token")).text == "new"
    assert c.get("/login", headers=SPOOFED).text == "old"


def test_flask_header_context_is_opt_in(flask_app_factory: Callable[..., Any]) -> None:
    from flagsync.flask import header_context

    c = flask_app_factory(context_builder=header_context()).test_client()
    assert c.get("/login", headers={"X-User-Email": "ann@example.com"}).text == "new"
    assert c.get("/ctx", headers={"X-User-Id": "7"}).json == {"targetingKey": "7"}
