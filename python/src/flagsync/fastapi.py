"""FastAPI integration.

    flags = FlagSync(source="var/flags.json", user=current_user)   # or "redis://…"
    app = FastAPI(lifespan=flags.lifespan)

    @app.get("/items")
    async def items(beta: bool = Depends(flags.dependency("beta_mode"))): ...

    @app.get("/ui")
    async def ui(f: RequestFlags = Depends(flags.request_flags)):
        color = f.get("checkout_button_color", "#000")

Evaluation is pure CPU work of a few microseconds, so it runs inline in async handlers; a
file source is checked by a background watcher thread (never on the event loop).

Identity comes only from the app's own authentication, never from what the client sent:
the ``user`` dependency the app names (FastAPI resolves it once per request, shared with
the view), else ``request.state.user`` (set by an auth middleware), else Starlette's
``request.user`` when authenticated. The default context is that user's targetingKey (its
id), email, username and is_staff, plus the Accept-Language. Apps that sit behind a proxy
which authenticates and sets identity headers opt in with
``context_builder=header_context(...)``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from fastapi import Depends, FastAPI, Request

from ._context import DEFAULT_IDENTITY_HEADERS, BoundFlags, header_attributes, user_attributes
from .store import Store, open_store

__all__ = ["FlagSync", "RequestFlags", "default_context", "header_context", "request_user"]

ContextBuilder = Callable[[Request], Mapping[str, Any]]
T = TypeVar("T")

_NOT_NAMED = object()


def request_user(request: Request) -> Any:
    """The user the app authenticated for this request, or None (anonymous).

    The result of FlagSync's ``user`` dependency when the app named one (authoritative,
    even when it is None), else ``request.state.user``, else Starlette's ``request.user``
    (AuthenticationMiddleware). A user whose ``is_authenticated`` is false counts as none.
    """
    user = getattr(request.state, "flagsync_user", _NOT_NAMED)
    if user is _NOT_NAMED:
        user = getattr(request.state, "user", None)
        if user is None:
            user = request.scope.get("user")  # absent without AuthenticationMiddleware
    if user is None or not getattr(user, "is_authenticated", True):
        return None
    return user


def _language(request: Request) -> dict[str, Any]:
    lang = request.headers.get("accept-language")
    if lang:
        return {"language": lang.split(",")[0].split(";")[0].strip()}
    return {}


def default_context(request: Request) -> dict[str, Any]:
    """targetingKey/email/username/is_staff of request_user() and the language. Reads no
    identity from request headers."""
    user = request_user(request)
    ctx = user_attributes(user) if user is not None else {}
    ctx.update(_language(request))
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

    def from_headers(request: Request) -> dict[str, Any]:
        ctx = header_attributes(request.headers, names)
        ctx.update(_language(request))
        return ctx

    return from_headers


class RequestFlags(BoundFlags):
    """Flags bound to one request's context."""

    __slots__ = ("_store", "context")

    context: Mapping[str, Any]

    def __init__(self, store: Store, context: Mapping[str, Any]) -> None:
        self._store = store
        self.context = context


class FlagSync:
    """Owns the store (opened lazily or in lifespan) and makes dependencies.

    user: a FastAPI dependency of the app (e.g. ``get_current_user``) whose result is the
    request's user; FastAPI resolves it, with its own dependencies, for every flag
    dependency. context_builder(request) replaces the default context (default_context).
    Other keywords go to open_store (e.g. ``analytics=``).
    """

    def __init__(
        self,
        source: str | None = None,
        *,
        store: Store | None = None,
        user: Callable[..., Any] | None = None,
        context_builder: ContextBuilder = default_context,
        **store_options: Any,
    ) -> None:
        if source is None and store is None:
            raise ValueError("FlagSync needs a source (path or redis:// URL) or a store")
        self.source = source
        self._store = store
        self._user = user
        self.context_builder = context_builder
        self.store_options = store_options
        self.request_flags: Callable[..., Awaitable[RequestFlags]] = self._with_user(
            lambda request: RequestFlags(self.store, self.context(request)), "request_flags"
        )
        """A dependency: the flags bound to this request."""

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
        """This request's evaluation context (built once per request)."""
        ctx = getattr(request.state, "flagsync_context", None)
        if ctx is None:
            ctx = self.context_builder(request)
            request.state.flagsync_context = ctx
        return ctx

    def _with_user(self, body: Callable[[Request], T], name: str) -> Callable[..., Awaitable[T]]:
        """body as a dependency; with a user dependency, FastAPI resolves it first and its
        result becomes request_user(). The dependency is a coroutine function so FastAPI
        runs it on the event loop: evaluation takes microseconds and never blocks, and a
        sync dependency would cost a worker-thread hop per flag."""
        dep = self._user
        if dep is None:

            async def plain(request: Request) -> T:
                return body(request)

            fn: Callable[..., Awaitable[T]] = plain
        else:

            async def with_user(request: Request, user: Any = Depends(dep)) -> T:
                request.state.flagsync_user = user
                return body(request)

            fn = with_user
        fn.__name__ = name
        return fn

    def dependency(self, key: str, default: Any = False) -> Callable[..., Any]:
        """A dependency returning the flag's value, typed like default (bool by default)."""
        return self._with_user(
            lambda request: self.store.get(key, default, self.context(request)), f"flag_{key}"
        )
