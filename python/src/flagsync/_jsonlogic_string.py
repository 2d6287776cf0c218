"""String operators: in, cat, substr, and flagd's starts_with and ends_with. Mirrors
jsonlogic_string.go.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ._jsonlogic_core import (
    _ARRAY,
    _CONST_CODE,
    _OPS,
    Builder,
    EvalState,
    Node,
    _op,
)
from ._jsonlogic_values import (
    js_strict_equal,
    js_to_number,
    js_to_string,
)


@_op(("in",), 2, 2)
def _b_in(parts: list[Node]) -> Node:
    a, b = parts

    def in_(st: EvalState, sc: Any) -> Any:
        x = a(st, sc)
        hay = b(st, sc)
        if isinstance(hay, str):
            return js_to_string(x) in hay
        if isinstance(hay, _ARRAY):
            if type(x) is str:  # a str equals (==) only an equal str: strict equality
                return x in hay
            return any(js_strict_equal(x, y) for y in hay)
        return False

    return in_


@_op(("cat",), 0, -1)
def _b_cat(parts: list[Node]) -> Node:
    # null adds nothing (json-logic-js joins its arguments; flagd's JsonLogic too)
    return lambda st, sc: "".join(_cat_string(f(st, sc)) for f in parts)


def _cat_string(v: Any) -> str:
    return "" if v is None else js_to_string(v)


def _to_integer(v: Any) -> int:
    f = js_to_number(v)
    if math.isnan(f):
        return 0
    if f > 1e15:
        return 10**15
    if f < -1e15:
        return -(10**15)
    return int(f)


@_op(("substr",), 2, 3)
def _b_substr(parts: list[Node]) -> Node:
    def substr(st: EvalState, sc: Any) -> Any:
        s = js_to_string(parts[0](st, sc))
        n = len(s)
        start = _to_integer(parts[1](st, sc))
        if start < 0:
            start = max(n + start, 0)
        start = min(start, n)
        rest = s[start:]
        if len(parts) < 3:
            return rest
        length = _to_integer(parts[2](st, sc))
        if length < 0:
            length = len(rest) + length
        length = max(min(length, len(rest)), 0)
        return rest[:length]

    return substr


def _string_op(fn: Callable[[str, str], bool]) -> Builder:
    def build(parts: list[Node]) -> Node:
        a_f, b_f = parts
        if b_f.__code__ is _CONST_CODE:
            b_const = b_f(None, None)  # type: ignore[arg-type]
            if isinstance(b_const, str):

                def run_const(st: EvalState, sc: Any) -> Any:
                    a = a_f(st, sc)
                    return fn(a, b_const) if isinstance(a, str) else None

                return run_const

        def run(st: EvalState, sc: Any) -> Any:
            a = a_f(st, sc)
            b = b_f(st, sc)
            if not isinstance(a, str) or not isinstance(b, str):
                return None
            return fn(a, b)

        return run

    return build


_OPS["starts_with"] = (_string_op(str.startswith), 2, 2)
_OPS["ends_with"] = (_string_op(str.endswith), 2, 2)
