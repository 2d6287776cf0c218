"""Logic operators: if (and ?:), !, !!, or, and. Mirrors jsonlogic_logic.go."""

from __future__ import annotations

from typing import Any

from ._jsonlogic_core import (
    _CONST_CODE,
    EvalState,
    Node,
    _op,
)
from ._jsonlogic_values import (
    truthy,
)


@_op(("if", "?:"), 0, -1)
def _b_if(parts: list[Node]) -> Node:
    n = len(parts)
    if n == 3:  # the common shape, [condition, then, else], without the loop
        cond, then, other = parts

        if then.__code__ is _CONST_CODE and other.__code__ is _CONST_CODE:
            then_v, other_v = then(None, None), other(None, None)  # type: ignore[arg-type]

            def if3_const(st: EvalState, sc: Any) -> Any:
                c = cond(st, sc)
                if c is True or (c is not False and c is not None and truthy(c)):
                    return then_v
                return other_v

            return if3_const

        def if3(st: EvalState, sc: Any) -> Any:
            c = cond(st, sc)
            if c is True or (c is not False and c is not None and truthy(c)):
                return then(st, sc)
            return other(st, sc)

        return if3

    pairs = [(parts[i], parts[i + 1]) for i in range(0, n - 1, 2)]
    last = parts[-1] if n % 2 else None

    def if_(st: EvalState, sc: Any) -> Any:
        for cond, then in pairs:
            c = cond(st, sc)
            if c is True or (c is not False and c is not None and truthy(c)):
                return then(st, sc)
        return last(st, sc) if last is not None else None

    return if_


@_op(("!",), 1, 1)
def _b_not(parts: list[Node]) -> Node:
    (a,) = parts
    return lambda st, sc: not truthy(a(st, sc))


@_op(("!!",), 1, 1)
def _b_notnot(parts: list[Node]) -> Node:
    (a,) = parts
    return lambda st, sc: truthy(a(st, sc))


@_op(("or",), 0, -1)
def _b_or(parts: list[Node]) -> Node:
    def or_(st: EvalState, sc: Any) -> Any:
        v = None
        for f in parts:
            v = f(st, sc)
            if truthy(v):
                return v
        return v

    return or_


@_op(("and",), 0, -1)
def _b_and(parts: list[Node]) -> Node:
    def and_(st: EvalState, sc: Any) -> Any:
        v = None
        for f in parts:
            v = f(st, sc)
            if not truthy(v):
                return v
        return v

    return and_
