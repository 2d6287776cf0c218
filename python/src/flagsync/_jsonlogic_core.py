"""The core of JsonLogic: the evaluation state, compiled nodes, and the operator table
the operator modules register into. Mirrors jsonlogic.go.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import mmh3

MAX_FRACTIONAL_TOTAL = 2**31 - 1

# A caller's context may hold tuples where JSON has arrays (Go normalizes typed slices too).
_ARRAY = (list, tuple)


class CompileError(ValueError):
    """A rule that cannot be compiled: unknown operator, bad $ref, wrong arity."""


class EvalState:
    """Per-evaluation inputs the rules see besides the caller's context.

    targeting_key, when not None, is the caller's targetingKey kept apart from context
    (so callers need not copy their attributes to add it); context then has no
    "targetingKey" of its own. The timestamp is read from the clock only if a rule asks
    for it, and then once, so one evaluation sees one time.
    """

    __slots__ = ("context", "flag_key", "targeting_key", "_now", "_data")

    def __init__(
        self,
        context: Mapping[str, Any],
        flag_key: str,
        now: int | None = None,
        targeting_key: str | None = None,
    ) -> None:
        self.context = context
        self.flag_key = flag_key
        self.targeting_key = targeting_key
        self._now = now
        self._data: dict[str, Any] | None = None

    @property
    def timestamp(self) -> int:
        if self._now is None:
            self._now = int(time.time())
        return self._now

    def flagd(self) -> dict[str, Any]:
        return {"flagKey": self.flag_key, "timestamp": self.timestamp}

    def data(self) -> dict[str, Any]:
        """The whole data object (materialised only when a rule asks for it)."""
        if self._data is None:
            d = dict(self.context)
            if self.targeting_key is not None:
                d["targetingKey"] = self.targeting_key
            d["$flagd"] = self.flagd()
            self._data = d
        return self._data

    def lookup(self, key: str) -> tuple[bool, Any]:
        if key == "$flagd":
            return True, self.flagd()
        if key in self.context:
            return True, self.context[key]
        if key == "targetingKey" and self.targeting_key is not None:
            return True, self.targeting_key
        return False, None

    def targeting(self) -> Any:
        """The caller's targetingKey (None when absent)."""
        tk = self.targeting_key
        return tk if tk is not None else self.context.get("targetingKey")


# A compiled node: (state, scope) -> value; scope is ROOT at the top, else the item of
# the enclosing map/filter/all/some/none/reduce
Node = Callable[[EvalState, Any], Any]
Rule = Callable[[EvalState], Any]

_NO_SCOPE = object()
# The scope a compiled targeting node is called with: the root data, not a map/filter item.
ROOT: Any = _NO_SCOPE


def murmur3(data: bytes | str) -> int:
    """MurmurHash3 x86 32-bit, seed 0, unsigned."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return int(mmh3.hash(data, 0, signed=False))


def _const(v: Any) -> Node:
    def const(st: EvalState, sc: Any) -> Any:
        return v

    return const


# constant nodes are recognised by their code object (cheaper than a marker attribute)
_CONST_CODE = _const(None).__code__


Builder = Callable[[list[Node]], Node]
_OPS: dict[str, tuple[Builder, int, int]] = {}
# flagd's own operators: wrong argument counts make them null instead of a load problem
_CUSTOM_OPS = frozenset({"starts_with", "ends_with", "sem_ver", "fractional"})


def _op(names: tuple[str, ...], lo: int, hi: int) -> Callable[[Builder], Builder]:
    def deco(b: Builder) -> Builder:
        for n in names:
            _OPS[n] = (b, lo, hi)
        return b

    return deco


def _arg(parts: list[Node], i: int) -> Node:
    return parts[i] if i < len(parts) else _const(None)
