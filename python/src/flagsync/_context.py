"""Evaluation contexts whose expensive attributes are computed only when a rule reads them."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

__all__ = ["LazyContext"]


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
