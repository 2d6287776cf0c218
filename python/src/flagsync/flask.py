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

Identity comes only from the app's own authentication, never from what the client sent:
the ``user`` callable the app names (``FlagSync(app, user=...)``), else ``g.user`` if the
app sets it, else flask_login's ``current_user`` when Flask-Login is installed and set up
and the user is authenticated. The default context is that user's targetingKey (its id),
email, username and is_staff, plus the best Accept-Language. Apps behind a proxy that
authenticates and sets identity headers opt in with ``context_builder=header_context(...)``.
Config: FLAGSYNC_SOURCE, FLAGSYNC_OPTIONS (open_store keywords, e.g. analytics),
FLAGSYNC_CONTEXT_BUILDER, FLAGSYNC_USER.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from flask import Flask, abort, current_app, g, has_request_context, redirect, request
from jinja2 import pass_context

from ._context import DEFAULT_IDENTITY_HEADERS, BoundFlags, header_attributes, user_attributes
from .store import Store, open_store

__all__ = ["FlagSync", "RequestFlags", "default_context", "header_context", "request_user"]

ContextBuilder = Callable[[], Mapping[str, Any]]
UserGetter = Callable[[], Any]


def _flask_login_user() -> Any:
    # Flask-Login is optional: only an app that set up a LoginManager has a current_user
    if getattr(current_app, "login_manager", None) is None:
        return None
    try:
        flask_login = importlib.import_module("flask_login")
    except ImportError:
        return None
    return flask_login.current_user._get_current_object()


def request_user() -> Any:
    """The user the app authenticated for this request, or None (anonymous).

    The app's ``user`` callable when it named one (authoritative, even when it returns
    None), else ``g.user``, else flask_login's current_user. A user whose
    ``is_authenticated`` is false counts as none.
    """
    ext = current_app.extensions.get("flagsync")
    named: UserGetter | None = getattr(ext, "user", None)
    if named is not None:
        user = named()
    else:
        user = g.get("user")
        if user is None:
            user = _flask_login_user()
    if user is None or not getattr(user, "is_authenticated", True):
        return None
    return user


def _language() -> dict[str, Any]:
    lang = request.accept_languages.best
    return {"language": lang} if lang else {}


def default_context() -> dict[str, Any]:
    """targetingKey/email/username/is_staff of request_user() and the language. Reads no
    identity from request headers."""
    user = request_user()
    ctx = user_attributes(user) if user is not None else {}
    ctx.update(_language())
    return ctx


def header_context(
    headers: Mapping[str, str] = DEFAULT_IDENTITY_HEADERS,
) -> ContextBuilder:
    """A context builder that TRUSTS REQUEST HEADERS for identity: opt-in only.

    WARNING: any client can send any header. ``curl -H 'X-User-Email: attacker@example.com'``
    gets the targeting of that email. Use this only when every request reaches the app
    through a proxy that authenticates the caller and sets (replacing whatever the client
    sent) exactly these headers, and nothing else can reach the app.

    headers maps a context attribute to the header it is read from (default: targetingKey
    from X-User-Id, email from X-User-Email); the language comes from Accept-Language.
    """
    names = dict(headers)

    def from_headers() -> dict[str, Any]:
        ctx = header_attributes(request.headers, names)
        ctx.update(_language())
        return ctx

    return from_headers


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
    """The Flask extension; one store per app, shared by all requests and threads.

    user: the app's callable returning the request's user (see request_user);
    context_builder() replaces the default context (default_context).
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        store: Store | None = None,
        context_builder: ContextBuilder | None = None,
        user: UserGetter | None = None,
    ) -> None:
        self._store = store
        self.context_builder = context_builder
        self.user = user
        """The app's callable returning the request's user (see request_user)."""
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
        if self.user is None:
            self.user = app.config.get("FLAGSYNC_USER")
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
