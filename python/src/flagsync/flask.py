"""Flask integration.

    app.config["FLAGSYNC_SOURCE"] = "redis://localhost:6379/0?flagSetId=prod"  # or a file path
    flags = FlagSync(app)            # or FlagSync() + flags.init_app(app)

    @app.get("/login")
    def login():
        if g.flags.is_active("new_auth_flow"):
            ...
        limit = g.flags.get("max_items", 10)

    @app.get("/beta")
    @flags.flag_required("beta_mode")
    def beta(): ...

Templates: ``{% if flag_is_active("beta_mode") %}`` or ``{% if "beta_mode" is flag_active %}``.
The context of a request comes from ``context_builder()`` (default: g.user's id/email/
username if the app sets g.user, and the best Accept-Language).
Config: FLAGSYNC_SOURCE, FLAGSYNC_OPTIONS (store keywords), FLAGSYNC_CONTEXT_BUILDER.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from flask import Flask, abort, g, has_request_context, redirect, request
from jinja2 import pass_context

from ._context import BoundFlags, user_attributes
from .store import Store, open_store

__all__ = ["FlagSync", "RequestFlags", "default_context"]

ContextBuilder = Callable[[], Mapping[str, Any]]


def default_context() -> dict[str, Any]:
    """targetingKey/email/username from g.user (if the app sets one) and the language."""
    ctx: dict[str, Any] = {}
    user = g.get("user")
    if user is not None:
        ctx.update(user_attributes(user))
    lang = request.accept_languages.best
    if lang:
        ctx["language"] = lang
    return ctx


class RequestFlags(BoundFlags):
    """Flags bound to one request's context (``g.flags``)."""

    __slots__ = ("_store", "_builder", "_ctx")

    def __init__(self, store: Store, builder: ContextBuilder) -> None:
        self._store = store
        self._builder = builder
        self._ctx: Mapping[str, Any] | None = None

    @property
    def context(self) -> Mapping[str, Any]:
        if self._ctx is None:
            self._ctx = self._builder()
        return self._ctx


F = TypeVar("F", bound=Callable[..., Any])


class FlagSync:
    """The Flask extension; one store per app, shared by all requests and threads."""

    def __init__(
        self,
        app: Flask | None = None,
        *,
        store: Store | None = None,
        context_builder: ContextBuilder | None = None,
    ) -> None:
        self._store = store
        self.context_builder = context_builder
        if app is not None:
            self.init_app(app)

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("FlagSync is not initialised: call init_app(app)")
        return self._store

    def init_app(self, app: Flask) -> None:
        if self._store is None:
            source = app.config.get("FLAGSYNC_SOURCE")
            if not source:
                raise RuntimeError('set app.config["FLAGSYNC_SOURCE"] (a path or redis:// URL)')
            self._store = open_store(source, **app.config.get("FLAGSYNC_OPTIONS", {}))
        if self.context_builder is None:
            self.context_builder = app.config.get("FLAGSYNC_CONTEXT_BUILDER", default_context)
        app.extensions["flagsync"] = self
        app.before_request(self._bind)
        app.jinja_env.globals["flag_is_active"] = self._jinja_is_active
        app.jinja_env.globals["flag_value"] = self._jinja_value
        app.jinja_env.tests["flag_active"] = self._jinja_test()

    def _bind(self) -> None:
        g.flags = RequestFlags(self.store, cast(ContextBuilder, self.context_builder))

    def flags(self) -> RequestFlags:
        """The current request's flags (g.flags), or flags with an empty context outside one."""
        if has_request_context():
            rf = g.get("flags")
            if rf is None:
                self._bind()
                rf = g.flags
            return cast(RequestFlags, rf)
        return RequestFlags(self.store, dict)

    def _jinja_is_active(self, key: str) -> bool:
        return self.flags().is_active(key)

    def _jinja_test(self) -> Callable[..., bool]:
        # pass_context keeps Jinja from folding `"name" is flag_active` into a constant at
        # template compile time: the answer depends on the request
        @pass_context
        def flag_active(_ctx: Any, key: str) -> bool:
            return self.flags().is_active(key)

        return flag_active

    def _jinja_value(self, key: str, default: Any = None) -> Any:
        return self.flags().get(key, default)

    def flag_required(self, key: str, redirect_to: str | None = None) -> Callable[[F], F]:
        """View decorator: 404, or a redirect to redirect_to, when the flag is not active."""

        def deco(view: F) -> F:
            @functools.wraps(view)
            def wrapped(*args: Any, **kwargs: Any) -> Any:
                if not self.flags().is_active(key):
                    if redirect_to:
                        return redirect(redirect_to)
                    abort(404)
                return view(*args, **kwargs)

            return cast(F, wrapped)

        return deco
