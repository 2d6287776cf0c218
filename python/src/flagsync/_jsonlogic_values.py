"""JavaScript value semantics as json-logic-js applies them: truthiness, conversion to
number and string, loose and strict equality, relational comparison. Mirrors
jsonlogic_values.go.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from .canonical import js_number_string


def is_number(v: Any) -> bool:  # bool is an int in Python, not a number in JSON
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def truthy(v: Any) -> bool:
    """JsonLogic truthiness: null, false, 0, NaN, "", [] and {} are false; "0" is true.

    An empty object is falsy as in flagd (Go and Python); json-logic-js says truthy."""
    if v is None or v is False:
        return False
    if v is True:
        return True
    if isinstance(v, (int, float)):
        return v == v and v != 0
    if isinstance(v, (str, list, tuple, Mapping)):
        return len(v) > 0
    return True


_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_JS_WS = (
    " \t\n\v\f\r\u00a0\ufeff\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def _parse_decimal(t: str) -> float | None:
    """A decimal literal ([+-] digits [. digits] [e [+-] digits], or .digits)."""
    if not _DECIMAL.fullmatch(t):
        return None
    try:
        return float(t)
    except (ValueError, OverflowError):  # pragma: no cover - the regex admits only floats
        return None


def js_to_number(v: Any) -> float:
    """ToNumber for comparisons and loose equality: null -> 0, booleans -> 0/1,
    "" and blanks -> 0, decimal strings (and Infinity) -> value, everything else NaN."""
    if v is None or v is False:
        return 0.0
    if v is True:
        return 1.0
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        t = v.strip(_JS_WS)
        if t == "":
            return 0.0
        if t in ("Infinity", "+Infinity"):
            return math.inf
        if t == "-Infinity":
            return -math.inf
        f = _parse_decimal(t)
        return math.nan if f is None else f
    return math.nan


def _to_arith(v: Any) -> float | None:
    """The stricter coercion of arithmetic: numbers and decimal strings, else None."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, str):
        return _parse_decimal(v.strip(_JS_WS))
    return None


def js_to_string(v: Any) -> str:
    """JavaScript String(v) (arrays joined with ",", null elements empty)."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return v
    if isinstance(v, (int, float)):
        return js_number_string(v)
    if isinstance(v, (list, tuple)):
        return _array_to_string(v)
    return "[object Object]"


def _array_to_string(v: list[Any] | tuple[Any, ...]) -> str:
    """String(array): elements joined with ",", null as "", nested arrays likewise.

    Written without recursion: a caller's context may nest arrays deeper than Python's
    stack allows, and Go's reader returns the string for any depth.
    """
    out: list[str] = []
    stack = [iter(v)]
    first = [True]
    while stack:
        for x in stack[-1]:
            if first[-1]:
                first[-1] = False
            else:
                out.append(",")
            if isinstance(x, (list, tuple)):
                stack.append(iter(x))
                first.append(True)
                break
            if x is not None:
                out.append(js_to_string(x))
        else:
            stack.pop()
            first.pop()
    return "".join(out)


def js_strict_equal(a: Any, b: Any) -> bool:
    """=== on primitives; arrays and objects are never equal (as in Go's flagset)."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if is_number(a) and is_number(b):
        return bool(a == b)
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    return False


def js_loose_equal(a: Any, b: Any) -> bool:
    """== on primitives (numbers, strings and booleans compare numerically when mixed)."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool):
        if isinstance(b, bool):
            return a == b
        if is_number(b) or isinstance(b, str):
            return js_loose_equal(1.0 if a else 0.0, b)
        return False
    if is_number(a):
        if is_number(b):
            return bool(a == b)
        if isinstance(b, (str, bool)):
            return float(a) == js_to_number(b)
        return False
    if isinstance(a, str):
        if isinstance(b, str):
            return a == b
        if is_number(b):
            return js_to_number(a) == float(b)
        if isinstance(b, bool):
            return js_to_number(a) == js_to_number(b)
    return False


def _less(a: Any, b: Any, or_equal: bool) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a <= b if or_equal else a < b
    x = js_to_number(a)
    y = js_to_number(b)
    return x <= y if or_equal else x < y  # NaN compares false both ways


def _num_result(x: float) -> Any:
    if math.isnan(x) or math.isinf(x):
        return None
    if x == 0:
        return 0.0  # no -0
    return x


def _ascii_digits(p: str) -> bool:
    return p != "" and all("0" <= c <= "9" for c in p)
