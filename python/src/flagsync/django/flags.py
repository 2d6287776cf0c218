"""The process's store for settings.FLAGSYNC, the evaluation context of a request and the
flag functions views call (sync, and ``a…`` for async views).

Every evaluation goes through the store's own is_active/get/evaluate, like the Flask and
FastAPI integrations; an active override_flag answers from its own store instead.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

from asgiref.sync import async_to_sync, iscoroutinefunction, sync_to_async
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, SynchronousOnlyOperation
from django.http import HttpRequest
from django.utils.module_loading import import_string

from .._context import LazyContext
from ..flagset import FlagSet, Result, Type
from ..store import Store, open_store
from .overrides import overriding

__all__ = [
    "adefault_context",
    "aflag_details",
    "aflag_is_active",
    "aflag_value",
    "aget_context",
    "aget_store",
    "default_context",
    "flag_details",
    "flag_is_active",
    "flag_value",
    "get_context",
    "get_store",
    "reset",
]

ContextBuilder = Callable[[HttpRequest], Any]
"""request -> mapping, or an async function returning one."""

_lock = threading.Lock()
_store: Store | None = None
_builder: ContextBuilder | None = None
CONTEXT_ATTR = "_flagsync_context"
"""The request attribute that caches its evaluation context."""


def flagsync_settings() -> dict[str, Any]:
    """settings.FLAGSYNC, checked enough to open a store."""
    cfg = getattr(settings, "FLAGSYNC", None)
    if not isinstance(cfg, dict) or not cfg.get("SOURCE"):
        raise ImproperlyConfigured('settings.FLAGSYNC = {"SOURCE": "file:///…" or "redis://…"}')
    return cfg


def get_store() -> Store:
    """The process's store for settings.FLAGSYNC (created on first use; fork-safe)."""
    global _store
    s = _store
    if s is None:
        with _lock:
            if _store is None:
                cfg = flagsync_settings()
                _store = open_store(cfg["SOURCE"], **cfg.get("OPTIONS", {}))
            s = _store
    return s


async def aget_store() -> Store:
    """get_store for async code: the first call opens the store (a file read or a Redis
    round trip) in a thread instead of on the event loop."""
    s = _store
    if s is None:
        s = await sync_to_async(get_store)()
    return s


def reset() -> None:
    """Close the store and forget cached settings (used when settings change in tests)."""
    global _store, _builder
    with _lock:
        if _store is not None:
            _store.close()
        _store = None
        _builder = None


def reset_on_setting_changed(setting: str, **_: Any) -> None:
    """setting_changed receiver (connected by the app config): override_settings(FLAGSYNC=…)
    makes the next evaluation open the new source."""
    if setting == "FLAGSYNC":
        reset()


# contexts ----------------------------------------------------------------------------


def _user_groups(user: Any) -> list[str]:
    return sorted(g.name for g in user.groups.all())


def _context_of(
    request: HttpRequest, user: Any, groups: Callable[[], list[str]] | list[str] | None
) -> LazyContext:
    values: dict[str, Any] = {}
    thunks: dict[str, Callable[[], Any]] = {}
    authenticated = bool(user is not None and user.is_authenticated)
    values["is_authenticated"] = authenticated
    if authenticated:
        values["targetingKey"] = str(user.pk)
        for attr in ("email", "username", "is_staff", "is_superuser"):
            v = getattr(user, attr, None)
            if v is not None:
                values[attr] = v
        if callable(groups):
            thunks["groups"] = groups
        elif groups is not None:
            values["groups"] = groups
    lang = getattr(request, "LANGUAGE_CODE", None) or getattr(settings, "LANGUAGE_CODE", None)
    if lang:
        values["language"] = lang
    return LazyContext(values, thunks)


def default_context(request: HttpRequest) -> LazyContext:
    """The context the default builder makes from request.user and the request:
    targetingKey = str(user.pk), email, username, is_staff, is_superuser,
    is_authenticated, groups (names; queried only if a rule reads them) and language."""
    user = getattr(request, "user", None)
    groups = None
    if user is not None and hasattr(user, "groups"):
        groups = functools.partial(_user_groups, user)
    return _context_of(request, user, groups)


async def _auser(request: HttpRequest) -> Any:
    auser = getattr(request, "auser", None)
    if auser is not None:  # Django 5+: AuthenticationMiddleware's async accessor
        return await auser()
    if not hasattr(request, "user"):
        return None

    def resolve() -> Any:
        user = request.user
        _ = user.is_authenticated  # evaluates a lazy user here, in the sync thread
        return user

    return await sync_to_async(resolve)()


_groups_read: tuple[FlagSet, bool] | None = None


def _rules_read_groups(flags: FlagSet) -> bool:
    """Whether the snapshot mentions "groups" at all (once per snapshot): async contexts
    load a user's groups up front, so they do it only when some rule may read them."""
    global _groups_read
    seen = _groups_read
    if seen is None or seen[0] is not flags:
        seen = (flags, b'"groups' in flags.canonical())
        _groups_read = seen
    return seen[1]


async def adefault_context(request: HttpRequest) -> LazyContext:
    """default_context for async views: the user comes from ``await request.auser()`` and
    the groups from an async query (made only when the snapshot's rules mention groups)."""
    user = await _auser(request)
    groups = None
    if (
        user is not None
        and user.is_authenticated
        and hasattr(user, "groups")
        and _rules_read_groups((await aget_store()).flags)
    ):
        groups = sorted([g.name async for g in user.groups.all()])
    return _context_of(request, user, groups)


def _context_builder() -> ContextBuilder | None:
    """settings.FLAGSYNC["CONTEXT_BUILDER"] imported, or None for the default one."""
    global _builder
    b = _builder
    if b is None:
        path = getattr(settings, "FLAGSYNC", {}).get("CONTEXT_BUILDER")
        if not path:
            return None
        b = _builder = import_string(path)
    return b


def get_context(request: HttpRequest | None) -> Mapping[str, Any]:
    """The evaluation context of request (built once per request and cached on it)."""
    if request is None:
        return {}
    ctx = getattr(request, CONTEXT_ATTR, None)
    if ctx is None:
        builder = _context_builder()
        try:
            if builder is None:
                ctx = default_context(request)
            elif iscoroutinefunction(builder):
                ctx = async_to_sync(builder)(request)
            else:
                ctx = builder(request)
        except SynchronousOnlyOperation as e:
            raise SynchronousOnlyOperation(
                "flagsync: the sync flag functions read request.user, which an async view "
                "must not do: use await aflag_is_active/aflag_value/aflag_details, or "
                "await aget_context(request) before rendering a {% flag %} template"
            ) from e
        setattr(request, CONTEXT_ATTR, ctx)
    return cast(Mapping[str, Any], ctx)


async def aget_context(request: HttpRequest | None) -> Mapping[str, Any]:
    """get_context for async views: reads the user with ``await request.auser()`` (a sync
    CONTEXT_BUILDER runs in a thread). Later sync reads (the template tag) reuse it."""
    if request is None:
        return {}
    ctx = getattr(request, CONTEXT_ATTR, None)
    if ctx is None:
        builder = _context_builder()
        if builder is None:
            ctx = await adefault_context(request)
        elif iscoroutinefunction(builder):
            ctx = await cast(Callable[[HttpRequest], Awaitable[Any]], builder)(request)
        else:
            ctx = await sync_to_async(builder)(request)
        setattr(request, CONTEXT_ATTR, ctx)
    return cast(Mapping[str, Any], ctx)


# evaluation --------------------------------------------------------------------------


def flag_is_active(request: HttpRequest | None, name: str) -> bool:
    """True when the flag's boolean value for this request is true (False on any error)."""
    o = overriding(name)
    if o is not None:
        return o.is_active(name)
    return get_store().is_active(name, get_context(request))


def flag_value(request: HttpRequest | None, name: str, default: Any = None) -> Any:
    """The flag's value for this request, typed like default (see Store.get)."""
    o = overriding(name)
    if o is not None:
        return o.get(name, default)
    return get_store().get(name, default, get_context(request))


def flag_details(request: HttpRequest | None, name: str, typ: Type | str, default: Any) -> Result:
    """The whole result (value, variant, reason, error code and message, metadata)."""
    o = overriding(name)
    if o is not None:
        return o.evaluate(name, typ, default)
    return get_store().evaluate(name, typ, default, get_context(request))


def _known_context(request: HttpRequest | None) -> Mapping[str, Any] | None:
    """The context when it needs no building (no request, or cached on it), else None:
    the async functions then skip a coroutine call per evaluation."""
    if request is None:
        return _NO_CONTEXT
    return cast("Mapping[str, Any] | None", getattr(request, CONTEXT_ATTR, None))


_NO_CONTEXT: Mapping[str, Any] = {}


async def aflag_is_active(request: HttpRequest | None, name: str) -> bool:
    """flag_is_active for async views (the user is read with ``await request.auser()``)."""
    o = overriding(name)
    if o is not None:
        return o.is_active(name)
    ctx = _known_context(request)
    if ctx is None:
        ctx = await aget_context(request)
    return (_store or await aget_store()).is_active(name, ctx)


async def aflag_value(request: HttpRequest | None, name: str, default: Any = None) -> Any:
    """flag_value for async views."""
    o = overriding(name)
    if o is not None:
        return o.get(name, default)
    ctx = _known_context(request)
    if ctx is None:
        ctx = await aget_context(request)
    return (_store or await aget_store()).get(name, default, ctx)


async def aflag_details(
    request: HttpRequest | None, name: str, typ: Type | str, default: Any
) -> Result:
    """flag_details for async views."""
    o = overriding(name)
    if o is not None:
        return o.evaluate(name, typ, default)
    ctx = _known_context(request)
    if ctx is None:
        ctx = await aget_context(request)
    return (_store or await aget_store()).evaluate(name, typ, default, ctx)
