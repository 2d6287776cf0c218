"""flagsync.fastapi with TestClient: dependencies, context from the request, lifespan,
and that the file is watched off the event loop."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from conftest import wait_for, write_atomic
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient

from flagsync import FileStore
from flagsync.canonical import encode_document
from flagsync.fastapi import FlagSync, RequestFlags

FLAGS = {
    "beta_mode": {
        "state": "ENABLED",
        "variants": {"on": True, "off": False},
        "defaultVariant": "off",
        "targeting": {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on", None]},
    },
    "search": {
        "state": "ENABLED",
        "variants": {"v1": {"engine": "sql", "limit": 10}, "v2": {"engine": "vector", "limit": 25}},
        "defaultVariant": "v1",
    },
}


def make_app(p: Path) -> tuple[FastAPI, FlagSync]:
    flags = FlagSync(source=str(p), watch_interval=0.02)
    app = FastAPI(lifespan=flags.lifespan)

    @app.middleware("http")
    async def authenticate(request: Request, call_next: Any) -> Any:
        # the app's own authentication (a stand-in): it sets request.state.user
        email = request.query_params.get("as")
        request.state.user = {"id": 1, "email": email} if email else None
        return await call_next(request)

    @app.get("/beta")
    async def beta(on: bool = Depends(flags.dependency("beta_mode"))) -> dict[str, Any]:
        return {"beta": on}

    @app.get("/search")
    async def search(f: RequestFlags = Depends(flags.request_flags)) -> dict[str, Any]:
        cfg: dict[str, Any] = f.get("search", {})
        return {"search": cfg, "thread": threading.current_thread().name}

    return app, flags


def test_dependencies_and_context(tmp_path: Path) -> None:
    p = tmp_path / "flags.json"
    write_atomic(p, encode_document({"flags": FLAGS}))
    app, flags = make_app(p)
    with TestClient(app) as c:
        assert c.get("/beta?as=a@example.com").json() == {"beta": True}
        # a header is not the app's authentication (test_web_identity.py has the rest)
        assert c.get("/beta", headers={"X-User-Email": "a@example.com"}).json() == {"beta": False}
        assert c.get("/beta").json() == {"beta": False}
        assert c.get("/search").json()["search"] == {"engine": "sql", "limit": 10}
        store = flags.store
        assert isinstance(store, FileStore)
        assert store.check_on_read is False  # no file-system call on the event loop
        changed = dict(FLAGS)
        changed["search"] = {**FLAGS["search"], "defaultVariant": "v2"}
        write_atomic(p, encode_document({"flags": changed}))
        assert wait_for(lambda: c.get("/search").json()["search"]["engine"] == "vector")
    # lifespan closed the store; the watcher thread is gone
    assert store._thread is None or not store._thread.is_alive()


def test_custom_context_builder(tmp_path: Path) -> None:
    p = tmp_path / "flags.json"
    write_atomic(p, encode_document({"flags": FLAGS}))

    def ctx(request: Request) -> dict[str, Any]:
        return {"email": request.query_params.get("email", "")}

    flags = FlagSync(source=str(p), context_builder=ctx)
    app = FastAPI(lifespan=flags.lifespan)

    @app.get("/b")
    def b(on: bool = Depends(flags.dependency("beta_mode"))) -> bool:
        return on

    with TestClient(app) as c:
        assert c.get("/b?email=x@example.com").json() is True
        assert c.get("/b?email=x@y.org").json() is False


def test_flag_dependencies_run_on_the_event_loop(tmp_path: Path) -> None:
    """Evaluation is microseconds of CPU: the dependencies are coroutine functions, so
    FastAPI runs them on the event loop instead of hopping to a worker thread per flag."""
    p = tmp_path / "flags.json"
    write_atomic(p, encode_document({"flags": FLAGS}))
    seen: list[str] = []

    def ctx(request: Request) -> dict[str, Any]:
        seen.append(threading.current_thread().name)
        return {}

    flags = FlagSync(source=str(p), context_builder=ctx, user=lambda: None)
    app = FastAPI(lifespan=flags.lifespan)

    @app.get("/both")
    async def both(
        on: bool = Depends(flags.dependency("beta_mode")),
        f: RequestFlags = Depends(flags.request_flags),
    ) -> dict[str, Any]:
        return {"loop": threading.current_thread().name, "on": on, "search": f.get("search", {})}

    with TestClient(app) as c:
        body = c.get("/both").json()
    assert body["on"] is False and body["search"]["engine"] == "sql"
    assert seen and set(seen) == {body["loop"]}, (seen, body["loop"])
