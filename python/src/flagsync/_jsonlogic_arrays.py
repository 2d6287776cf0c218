"""Array operators: merge, and map, filter, all, some, none and reduce, which evaluate a
rule with each element as the data. Mirrors jsonlogic_arrays.go.
"""

from __future__ import annotations

from typing import Any

from ._jsonlogic_core import (
    _ARRAY,
    _OPS,
    Builder,
    EvalState,
    Node,
    _arg,
    _op,
)
from ._jsonlogic_values import (
    truthy,
)


@_op(("merge",), 0, -1)
def _b_merge(parts: list[Node]) -> Node:
    def merge(st: EvalState, sc: Any) -> Any:
        out: list[Any] = []
        for f in parts:
            v = f(st, sc)
            if isinstance(v, _ARRAY):
                out.extend(v)
            else:
                out.append(v)
        return out

    return merge


def _scoped(kind: str) -> Builder:
    def build(parts: list[Node]) -> Node:
        arr_f, logic_f = parts

        def run(st: EvalState, sc: Any) -> Any:
            arr = arr_f(st, sc)
            if not isinstance(arr, _ARRAY):
                arr = []
            if kind == "map":
                return [logic_f(st, x) for x in arr]
            if kind == "filter":
                return [x for x in arr if truthy(logic_f(st, x))]
            if kind == "all":
                return bool(arr) and all(truthy(logic_f(st, x)) for x in arr)
            if kind == "some":
                return any(truthy(logic_f(st, x)) for x in arr)
            return not any(truthy(logic_f(st, x)) for x in arr)

        return run

    return build


for _kind in ("map", "filter", "all", "some", "none"):
    _OPS[_kind] = (_scoped(_kind), 2, 2)


@_op(("reduce",), 2, 3)
def _b_reduce(parts: list[Node]) -> Node:
    arr_f, logic_f = parts[0], parts[1]
    init_f = _arg(parts, 2)

    def reduce(st: EvalState, sc: Any) -> Any:
        arr = arr_f(st, sc)
        acc = init_f(st, sc)
        if not isinstance(arr, _ARRAY):
            return acc
        for x in arr:
            acc = logic_f(st, {"current": x, "accumulator": acc})
        return acc

    return reduce
