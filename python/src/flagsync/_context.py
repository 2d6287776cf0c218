"""Evaluation contexts whose expensive attributes are computed only when a rule reads them."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .flagset import Result, Type
    from .store import Store

__all__ = [
    "DEFAULT_IDENTITY_HEADERS",
    "BoundFlags",
    "LazyContext",
    "header_attributes",
    "user_attributes",
]

_USER_ATTRIBUTES = ("email", "username", "is_staff")

DEFAULT_IDENTITY_HEADERS: Mapping[str, str] = {
    "targetingKey": "X-User-Id",
    "email": "X-User-Email",
}
"""header_context()'s default: context attribute → request header."""


def user_attributes(user: Any) -> dict[str, Any]:
    """targetingKey (the id, as a string), email, username and is_staff of an app's
    user object or mapping; attributes that are missing or None are left out."""
    ctx: dict[str, Any] = {}
    uid = user.get("id") if isinstance(user, Mapping) else getattr(user, "id", None)
    if uid is not None:
        ctx["targetingKey"] = str(uid)
    for attr in _USER_ATTRIBUTES:
        v = user.get(attr) if isinstance(user, Mapping) else getattr(user, attr, None)
        if v is not None:
            ctx[attr] = v
    return ctx


def header_attributes(headers: Any, names: Mapping[str, str]) -> dict[str, Any]:
    """The context attributes named by names (attribute → header name) read from a
    request's case-insensitive headers; absent or empty headers are left out.

    Only for header_context(): headers are whatever the client sent."""
    ctx: dict[str, Any] = {}
    for attr, header in names.items():
        v = headers.get(header)
        if v:
            ctx[attr] = v
    return ctx


class BoundFlags:
    """Flags bound to one request's context: the web framework integrations' request
    objects set _store and provide context (an attribute or a lazy property)."""

    __slots__ = ()

    _store: Store

    @property
    def context(self) -> Mapping[str, Any]:
        raise NotImplementedError

    def is_active(self, key: str) -> bool:
        return self._store.is_active(key, self.context)

    def get(self, key: str, default: Any = None) -> Any:
        return self._store.get(key, default, self.context)

    def evaluate(self, key: str, typ: Type | str, default: Any) -> Result:
        return self._store.evaluate(key, typ, default, self.context)


class LazyContext(Mapping[str, Any]):
    """A read-only mapping: plain values plus thunks evaluated (once) on first access.

    Framework integrations use it for attributes that cost a database query (a user's
    groups), so a request pays for them only if some targeting rule asks.
    """

    __slots__ = ("_values", "_thunks")

    def __init__(
        self,
        values: dict[str, Any] | None = None,
        thunks: dict[str, Callable[[], Any]] | None = None,
    ) -> None:
        self._values: dict[str, Any] = values if values is not None else {}
        self._thunks: dict[str, Callable[[], Any]] = thunks or {}

    def __getitem__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            thunk = self._thunks.pop(key, None)
            if thunk is None:
                raise
            v = self._values[key] = thunk()
            return v

    def __contains__(self, key: object) -> bool:
        return key in self._values or key in self._thunks

    def __iter__(self) -> Iterator[str]:
        yield from self._values
        yield from list(self._thunks)

    def __len__(self) -> int:
        return len(self._values) + len(self._thunks)

    def get(self, key: str, default: Any = None) -> Any:
        if key in self._values:
            return self._values[key]
        if key in self._thunks:
            return self[key]
        return default

    def with_values(self, extra: Mapping[str, Any]) -> LazyContext:
        """A copy with extra plain values (extra wins)."""
        v = dict(self._values)
        v.update(extra)
        return LazyContext(v, {k: t for k, t in self._thunks.items() if k not in extra})
