"""flagd's fractional operator: weighted, sticky bucketing of a caller by the
MurmurHash3 of its bucketing key. Mirrors jsonlogic_fractional.go.
"""

from __future__ import annotations

import math
from typing import Any

from ._jsonlogic_core import (
    _ARRAY,
    MAX_FRACTIONAL_TOTAL,
    EvalState,
    Node,
    _op,
    murmur3,
)
from ._jsonlogic_values import (
    is_number,
)


def _fractional(state: EvalState, vals: list[Any]) -> Any:
    """Bucket the caller into one of the weighted entries; like flagd, anything
    malformed is None (null)."""
    if not vals:
        return None
    # The first argument is the bucketing value unless it is an entry (an array). A null
    # one (e.g. a var of a missing attribute) falls back to flagKey + targetingKey, like
    # an absent one; any other non-string is null.
    first = vals[0]
    entries = vals
    if isinstance(first, str):
        key = first
        entries = vals[1:]
    elif first is None or isinstance(first, _ARRAY):
        if first is None:
            entries = vals[1:]
        tk = state.targeting()
        if not isinstance(tk, str) or tk == "":
            return None
        key = state.flag_key + tk
    else:
        return None
    if not entries:
        return None
    names: list[Any] = []
    weights: list[int] = []
    total = 0
    for e in entries:
        if not isinstance(e, _ARRAY) or not e:
            return None
        name = e[0]
        if not (name is None or isinstance(name, (str, bool)) or is_number(name)):
            return None
        w = 1  # elements after the weight are ignored, as flagd does
        if len(e) >= 2 and e[1] is not None:
            x = e[1]
            if not is_number(x) or not math.isfinite(x) or x != int(x):
                return None
            w = int(x)
            if w < 0 or w > MAX_FRACTIONAL_TOTAL:
                return None
        total += w
        if total > MAX_FRACTIONAL_TOTAL:
            return None
        names.append(name)
        weights.append(w)
    if total == 0:
        return None
    bucket = (murmur3(key) * total) >> 32
    cum = 0
    for name, w in zip(names, weights, strict=True):
        cum += w
        if bucket < cum:
            return name
    return None  # unreachable: bucket < total


@_op(("fractional",), 1, -1)
def _b_fractional(parts: list[Node]) -> Node:
    return lambda st, sc: _fractional(st, [f(st, sc) for f in parts])
