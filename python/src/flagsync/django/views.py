"""Views gated by a flag: the @flag_required decorator and FlagRequiredMixin, for sync and
async views (async ones read the flag with aflag_is_active: no sync database access)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from asgiref.sync import iscoroutinefunction
from django.core.exceptions import ImproperlyConfigured
from django.http import Http404, HttpRequest, HttpResponseBase
from django.shortcuts import redirect

from .flags import aflag_is_active, flag_is_active

__all__ = ["FlagRequiredMixin", "flag_required"]

V = TypeVar("V", bound=Callable[..., Any])


def _inactive(name: str, redirect_to: str | None) -> HttpResponseBase:
    """The answer when the flag is off: a redirect, or Http404."""
    if redirect_to:
        return redirect(redirect_to)
    raise Http404(f"flag {name} is not active")


def flag_required(name: str, redirect_to: str | None = None) -> Callable[[V], V]:
    """View decorator: 404 (or a redirect to redirect_to: a URL or URL name) when inactive.
    Works on sync and async (``async def``) views."""

    def deco(view: V) -> V:
        if iscoroutinefunction(view):

            async def awrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                if not await aflag_is_active(request, name):
                    return _inactive(name, redirect_to)
                return await view(request, *args, **kwargs)

            return cast(V, functools.wraps(view)(awrapped))

        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            if not flag_is_active(request, name):
                return _inactive(name, redirect_to)
            return view(request, *args, **kwargs)

        return cast(V, wrapped)

    return deco


class FlagRequiredMixin:
    """Class-based views, sync or async: set flag_name (and optionally flag_redirect_to)."""

    flag_name: str = ""
    flag_redirect_to: str | None = None

    def _required_flag(self) -> str:
        if not self.flag_name:
            raise ImproperlyConfigured(f"{type(self).__name__}.flag_name is not set")
        return self.flag_name

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        name = self._required_flag()
        if getattr(self, "view_is_async", False):
            # View.as_view awaits what dispatch returns when the handlers are async
            return self._adispatch(name, request, *args, **kwargs)
        if not flag_is_active(request, name):
            return _inactive(name, self.flag_redirect_to)
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]

    async def _adispatch(self, name: str, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        if not await aflag_is_active(request, name):
            return _inactive(name, self.flag_redirect_to)
        return await super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
