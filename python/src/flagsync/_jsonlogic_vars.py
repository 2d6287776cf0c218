"""Reading the caller's data: var paths, missing and missing_some. Mirrors
jsonlogic_vars.go.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._jsonlogic_core import (
    _ARRAY,
    _NO_SCOPE,
    EvalState,
    Node,
    _op,
)
from ._jsonlogic_values import (
    _ascii_digits,
    js_to_number,
    js_to_string,
)


def _split_path(path: Any) -> list[str] | None:
    """The segments of a var path; None means "the whole data"."""
    if path is None:
        return None
    s = js_to_string(path)
    return None if s == "" else s.split(".")


def _array_index(seg: str) -> int | None:
    if seg == "" or len(seg) > 9 or (len(seg) > 1 and seg[0] == "0") or not _ascii_digits(seg):
        return None
    return int(seg)


def _walk(v: Any, segments: list[str], start: int) -> tuple[bool, Any]:
    for seg in segments[start:]:
        if isinstance(v, Mapping):
            if seg not in v:
                return False, None
            v = v[seg]
        elif isinstance(v, (list, tuple)):
            i = _array_index(seg)
            if i is None or i >= len(v):
                return False, None
            v = v[i]
        else:
            return False, None
    return True, v


def _resolve(state: EvalState, scope: Any, segs: list[str] | None) -> tuple[bool, Any]:
    if scope is _NO_SCOPE:
        if segs is None:
            return True, state.data()
        ok, first = state.lookup(segs[0])
        if not ok:
            return False, None
        return _walk(first, segs, 1)
    if segs is None:
        return True, scope
    return _walk(scope, segs, 0)


def _missing(st: EvalState, sc: Any, keys: Sequence[Any]) -> list[Any]:
    out = []
    for k in keys:
        ok, v = _resolve(st, sc, _split_path(k))
        if not ok or v is None or (isinstance(v, str) and v == ""):
            out.append(k)
    return out


@_op(("missing",), 0, -1)
def _b_missing(parts: list[Node]) -> Node:
    def missing(st: EvalState, sc: Any) -> Any:
        vals = [f(st, sc) for f in parts]
        if vals and isinstance(vals[0], _ARRAY):
            return _missing(st, sc, vals[0])
        return _missing(st, sc, vals)

    return missing


@_op(("missing_some",), 2, 2)
def _b_missing_some(parts: list[Node]) -> Node:
    need_f, keys_f = parts

    def missing_some(st: EvalState, sc: Any) -> Any:
        need = js_to_number(need_f(st, sc))
        keys = keys_f(st, sc)
        if not isinstance(keys, _ARRAY):
            keys = []
        miss = _missing(st, sc, keys)
        if len(keys) - len(miss) >= need:
            return []
        return miss

    return missing_some
