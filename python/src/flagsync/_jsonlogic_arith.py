"""Arithmetic operators: + - * / % min max. Mirrors jsonlogic_arith.go."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ._jsonlogic_core import (
    _OPS,
    Builder,
    EvalState,
    Node,
    _op,
)
from ._jsonlogic_values import (
    _num_result,
    _to_arith,
)


@_op(("+",), 0, -1)
def _b_plus(parts: list[Node]) -> Node:
    def plus(st: EvalState, sc: Any) -> Any:
        total = 0.0
        for f in parts:
            x = _to_arith(f(st, sc))
            if x is None:
                return None
            total += x
        return _num_result(total)

    return plus


@_op(("*",), 1, -1)
def _b_mul(parts: list[Node]) -> Node:
    def mul(st: EvalState, sc: Any) -> Any:
        total = 1.0
        for f in parts:
            x = _to_arith(f(st, sc))
            if x is None:
                return None
            total *= x
        return _num_result(total)

    return mul


@_op(("-",), 1, -1)
def _b_minus(parts: list[Node]) -> Node:
    if len(parts) == 1:
        (a,) = parts

        def neg(st: EvalState, sc: Any) -> Any:
            x = _to_arith(a(st, sc))
            return None if x is None else _num_result(-x)

        return neg
    if len(parts) == 2:
        a, b = parts

        def sub(st: EvalState, sc: Any) -> Any:
            x = _to_arith(a(st, sc))
            if x is None:
                return None
            y = _to_arith(b(st, sc))
            if y is None:
                return None
            return _num_result(x - y)

        return sub
    return _chain(parts, lambda x, y: x - y)


def _chain(parts: list[Node], step: Callable[[float, float], float | None]) -> Node:
    """a op b op c ... in turn (flagd's JsonLogic does so for - and / with more than two
    arguments); a non-number argument, a failed step or a NaN/infinite result is None."""

    def run(st: EvalState, sc: Any) -> Any:
        acc = _to_arith(parts[0](st, sc))
        if acc is None:
            return None
        out: Any = _num_result(acc)
        for f in parts[1:]:
            y = _to_arith(f(st, sc))
            if y is None:
                return None
            r = step(acc, y)
            if r is None:
                return None
            out = _num_result(r)
            if out is None:
                return None
            acc = out
        return out

    return run


def _two(parts: list[Node], fn: Callable[[float, float], Any]) -> Node:
    a, b = parts

    def run(st: EvalState, sc: Any) -> Any:
        x = _to_arith(a(st, sc))
        if x is None:
            return None
        y = _to_arith(b(st, sc))
        if y is None or y == 0:
            return None
        return fn(x, y)

    return run


def _mod(x: float, y: float) -> Any:
    if math.isinf(x) or math.isnan(x) or math.isnan(y):
        return None
    if math.isinf(y):
        return _num_result(x)
    return _num_result(math.fmod(x, y))


def _b_div(parts: list[Node]) -> Node:
    if len(parts) == 2:
        return _two(parts, lambda x, y: _num_result(x / y))
    return _chain(parts, lambda x, y: None if y == 0 else x / y)


_OPS["/"] = (_b_div, 2, -1)
_OPS["%"] = (lambda parts: _two(parts, _mod), 2, 2)


def _b_minmax(is_max: bool) -> Builder:
    def build(parts: list[Node]) -> Node:
        def mm(st: EvalState, sc: Any) -> Any:
            if not parts:
                return None
            best = 0.0
            for i, f in enumerate(parts):
                x = _to_arith(f(st, sc))
                if x is None:
                    return None
                if i == 0 or (is_max and x > best) or (not is_max and x < best):
                    best = x
            return _num_result(best)

        return mm

    return build


_OPS["min"] = (_b_minmax(False), 0, -1)
_OPS["max"] = (_b_minmax(True), 0, -1)
