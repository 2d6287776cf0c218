"""Comparison operators: == != === !== and the < <= > >= chains. Mirrors
jsonlogic_compare.go.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._jsonlogic_core import (
    _OPS,
    Builder,
    EvalState,
    Node,
)
from ._jsonlogic_values import (
    _less,
    js_loose_equal,
    js_strict_equal,
)


def _binary(fn: Callable[[Any, Any], Any]) -> Builder:
    def build(parts: list[Node]) -> Node:
        a, b = parts
        return lambda st, sc: fn(a(st, sc), b(st, sc))

    return build


_OPS["=="] = (_binary(js_loose_equal), 2, 2)
_OPS["==="] = (_binary(js_strict_equal), 2, 2)
_OPS["!="] = (_binary(lambda a, b: not js_loose_equal(a, b)), 2, 2)
_OPS["!=="] = (_binary(lambda a, b: not js_strict_equal(a, b)), 2, 2)


def _b_greater(or_equal: bool) -> Builder:
    """> and >=: with three arguments a descending chain a > b > c, as flagd evaluates it."""

    def build(parts: list[Node]) -> Node:
        if len(parts) == 2:
            a, b = parts
            return lambda st, sc: _less(b(st, sc), a(st, sc), or_equal)
        a, b, c = parts

        def chain(st: EvalState, sc: Any) -> Any:
            mid = b(st, sc)
            if not _less(mid, a(st, sc), or_equal):
                return False
            return _less(c(st, sc), mid, or_equal)

        return chain

    return build


_OPS[">"] = (_b_greater(False), 2, 3)
_OPS[">="] = (_b_greater(True), 2, 3)


def _b_less(or_equal: bool) -> Builder:
    def build(parts: list[Node]) -> Node:
        if len(parts) == 2:
            a, b = parts
            return lambda st, sc: _less(a(st, sc), b(st, sc), or_equal)
        a, b, c = parts

        def between(st: EvalState, sc: Any) -> Any:
            mid = b(st, sc)
            if not _less(a(st, sc), mid, or_equal):
                return False
            return _less(mid, c(st, sc), or_equal)

        return between

    return build


_OPS["<"] = (_b_less(False), 2, 3)
_OPS["<="] = (_b_less(True), 2, 3)
