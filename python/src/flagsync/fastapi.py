"""FastAPI integration.

    flags = FlagSync(source="var/flags.json")          # or "redis://…"
    app = FastAPI(lifespan=flags.lifespan)

    @app.get("/items")
    async def items(beta: bool = Depends(flags.dependency("beta_mode"))): ...

    @app.get("/ui")
    async def ui(f: RequestFlags = Depends(flags.request_flags)):
        color = f.get("checkout_button_color", "#000")

Evaluation is pure CPU work of a few microseconds, so it runs inline in async handlers; a
file source is checked by a background watcher thread (never on the event loop). The
context comes from context_builder(request) (default: request.state.user's id/email if set,
the X-User-Id / X-User-Email headers, and Accept-Language).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request

from ._context import BoundFlags, user_attributes
from .store import Store, open_store

__all__ = ["FlagSync", "RequestFlags", "default_context"]

ContextBuilder = Callable[[Request], Mapping[str, Any]]


def default_context(request: Request) -> dict[str, Any]:
    ctx: dict[str, Any] = {}
    user = getattr(request.state, "user", None)
    if user is not None:
        ctx.update(user_attributes(user))
    else:
        uid_h = request.headers.get("x-user-id")
        if uid_h:
            ctx["targetingKey"] = uid_h
        email = request.headers.get("x-user-email")
        if email:
            ctx["email"] = email
    lang = request.headers.get("accept-language")
    if lang:
        ctx["language"] = lang.split(",")[0].split(";")[0].strip()
    return ctx


class RequestFlags(BoundFlags):
    """Flags bound to one request's context."""

    __slots__ = ("_store", "context")

    context: Mapping[str, Any]

    def __init__(self, store: Store, context: Mapping[str, Any]) -> None:
        self._store = store
        self.context = context


class FlagSync:
    """Owns the store (opened lazily or in lifespan) and makes dependencies."""

    def __init__(
        self,
        source: str | None = None,
        *,
        store: Store | None = None,
        context_builder: ContextBuilder = default_context,
        **store_options: Any,
    ) -> None:
        if source is None and store is None:
            raise ValueError("FlagSync needs a source (path or redis:// URL) or a store")
        self.source = source
        self._store = store
        self.context_builder = context_builder
        self.store_options = store_options

    @property
    def store(self) -> Store:
        if self._store is None:
            assert self.source is not None
            opts = dict(self.store_options)
            if "://" not in self.source or self.source.startswith("file://"):
                # never stat the file on the event loop: a watcher thread does it
                opts.setdefault("check_on_read", False)
                opts.setdefault("watch", True)
            self._store = open_store(self.source, **opts)
        return self._store

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        """Open the store at startup, close it at shutdown."""
        _ = self.store
        try:
            yield
        finally:
            if self._store is not None:
                self._store.close()
                if self.source is not None:
                    self._store = None

    def context(self, request: Request) -> Mapping[str, Any]:
        ctx = getattr(request.state, "flagsync_context", None)
        if ctx is None:
            ctx = self.context_builder(request)
            request.state.flagsync_context = ctx
        return ctx

    def request_flags(self, request: Request) -> RequestFlags:
        """A dependency: the flags bound to this request."""
        return RequestFlags(self.store, self.context(request))

    def dependency(self, key: str, default: Any = False) -> Callable[[Request], Any]:
        """A dependency returning the flag's value, typed like default (bool by default)."""

        def flag_value(request: Request) -> Any:
            return self.store.get(key, default, self.context(request))

        flag_value.__name__ = f"flag_{key}"
        return flag_value
