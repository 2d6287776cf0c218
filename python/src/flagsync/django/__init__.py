"""Django integration: add ``"flagsync.django"`` to INSTALLED_APPS and configure

    FLAGSYNC = {
        "SOURCE": "file:///srv/app/var/flags.json",   # or "redis://…?prefix=flagsync:app"
        "OPTIONS": {},                                 # extra FileStore/RedisStore keywords
        "CONTEXT_BUILDER": "myapp.flags.context",      # optional: request -> mapping
    }

then ``flag_is_active(request, "new_dashboard")`` in views, ``@flag_required("name")``,
``FlagRequiredMixin``, ``{% load flagsync %}{% flag "name" %}…{% else %}…{% endflag %}`` in
templates and ``override_flag("name", True)`` in tests.

The default context: targetingKey = str(user.pk), email, username, is_staff, is_superuser,
is_authenticated, groups (names; queried only if a rule reads them) and language.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping
from contextlib import ContextDecorator
from typing import Any, TypeVar, cast

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.http import Http404, HttpRequest, HttpResponseBase
from django.shortcuts import redirect
from django.utils.module_loading import import_string

from .._context import LazyContext
from ..flagset import Result, Type
from ..store import Store, open_store

__all__ = [
    "FlagRequiredMixin",
    "default_context",
    "flag_details",
    "flag_is_active",
    "flag_required",
    "flag_value",
    "get_context",
    "get_store",
    "override_flag",
    "reset",
]

_lock = threading.Lock()
_store: Store | None = None
_builder: Callable[[HttpRequest], Mapping[str, Any]] | None = None
_overrides: list[dict[str, Any]] = []
_CTX_ATTR = "_flagsync_context"


def _config() -> dict[str, Any]:
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
                cfg = _config()
                _store = open_store(cfg["SOURCE"], **cfg.get("OPTIONS", {}))
            s = _store
    return s


def reset() -> None:
    """Close the store and forget cached settings (used when settings change in tests)."""
    global _store, _builder
    with _lock:
        if _store is not None:
            _store.close()
        _store = None
        _builder = None


def _on_setting_changed(setting: str, **_: Any) -> None:
    if setting == "FLAGSYNC":
        reset()


setting_changed.connect(_on_setting_changed)


def _user_groups(user: Any) -> list[str]:
    return sorted(g.name for g in user.groups.all())


def default_context(request: HttpRequest) -> LazyContext:
    """The context the default builder makes from request.user and the request."""
    values: dict[str, Any] = {}
    thunks: dict[str, Callable[[], Any]] = {}
    user = getattr(request, "user", None)
    authenticated = bool(user is not None and user.is_authenticated)
    values["is_authenticated"] = authenticated
    if authenticated and user is not None:
        values["targetingKey"] = str(user.pk)
        for attr in ("email", "username", "is_staff", "is_superuser"):
            v = getattr(user, attr, None)
            if v is not None:
                values[attr] = v
        if hasattr(user, "groups"):
            thunks["groups"] = functools.partial(_user_groups, user)
    lang = getattr(request, "LANGUAGE_CODE", None) or getattr(settings, "LANGUAGE_CODE", None)
    if lang:
        values["language"] = lang
    return LazyContext(values, thunks)


def _context_builder() -> Callable[[HttpRequest], Mapping[str, Any]]:
    global _builder
    b = _builder
    if b is None:
        path = getattr(settings, "FLAGSYNC", {}).get("CONTEXT_BUILDER")
        b = import_string(path) if path else default_context
        _builder = b
    return b


def get_context(request: HttpRequest | None) -> Mapping[str, Any]:
    """The evaluation context of request (built once per request and cached on it)."""
    if request is None:
        return {}
    ctx = getattr(request, _CTX_ATTR, None)
    if ctx is None:
        ctx = _context_builder()(request)
        setattr(request, _CTX_ATTR, ctx)
    return cast(Mapping[str, Any], ctx)


_MISSING = object()


def _override(name: str) -> Any:
    for layer in reversed(_overrides):
        if name in layer:
            return layer[name]
    return _MISSING


def flag_is_active(request: HttpRequest | None, name: str) -> bool:
    """True when the flag's boolean value for this request is true (False on any error)."""
    if _overrides:
        o = _override(name)
        if o is not _MISSING:
            return bool(o)
    return get_store().is_active(name, get_context(request))


def flag_value(request: HttpRequest | None, name: str, default: Any = None) -> Any:
    """The flag's value for this request, typed like default (see Store.get)."""
    if _overrides:
        o = _override(name)
        if o is not _MISSING:
            return o
    return get_store().get(name, default, get_context(request))


def flag_details(request: HttpRequest | None, name: str, typ: Type, default: Any) -> Result:
    return get_store().evaluate(name, typ, default, get_context(request))


class override_flag(ContextDecorator):  # noqa: N801 - reads like Django's override_settings
    """Force flag values in tests: ``with override_flag("new_dashboard", True): …`` or as a
    decorator. Values can be any type (``flag_value`` returns them as given)."""

    def __init__(self, name: str | None = None, active: Any = True, **flags: Any) -> None:
        self.flags = dict(flags)
        if name is not None:
            self.flags[name] = active

    def __enter__(self) -> override_flag:
        _overrides.append(self.flags)
        return self

    def __exit__(self, *exc: object) -> None:
        _overrides.remove(self.flags)


V = TypeVar("V", bound=Callable[..., Any])


def flag_required(name: str, redirect_to: str | None = None) -> Callable[[V], V]:
    """View decorator: 404 (or a redirect to redirect_to: a URL or URL name) when inactive."""

    def deco(view: V) -> V:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            if not flag_is_active(request, name):
                if redirect_to:
                    return redirect(redirect_to)
                raise Http404(f"flag {name} is not active")
            return view(request, *args, **kwargs)

        return cast(V, wrapped)

    return deco


class FlagRequiredMixin:
    """Class-based views: set flag_name (and optionally flag_redirect_to)."""

    flag_name: str = ""
    flag_redirect_to: str | None = None

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not self.flag_name:
            raise ImproperlyConfigured(f"{type(self).__name__}.flag_name is not set")
        if not flag_is_active(request, self.flag_name):
            if self.flag_redirect_to:
                return redirect(self.flag_redirect_to)
            raise Http404(f"flag {self.flag_name} is not active")
        return cast(HttpResponseBase, super().dispatch(request, *args, **kwargs))  # type: ignore[misc]
