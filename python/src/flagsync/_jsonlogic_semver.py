"""flagd's sem_ver operator. Semantic versions: semver 2.0.0 with an optional leading
v/V, and like flagd partial versions ("1", "1.2", also "1.2-beta": missing parts are 0).
Numeric parts are kept as their digits (no leading zeros), so parts of any size compare
numerically, as in flagd. Mirrors jsonlogic_semver.go and semver.go.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ._jsonlogic_core import (
    _CONST_CODE,
    EvalState,
    Node,
    _op,
)
from ._jsonlogic_values import (
    _ascii_digits,
    is_number,
)
from .canonical import js_number_string

_IDENT_CHARS = re.compile(r"[0-9A-Za-z-]+")


def _numeric_ident(p: str) -> bool:
    return _ascii_digits(p) and (len(p) == 1 or p[0] != "0")


def _cmp_digits(x: str, y: str) -> int:
    """Order two numeric identifiers (no leading zeros) by value."""
    if len(x) != len(y):
        return -1 if len(x) < len(y) else 1
    return (x > y) - (x < y)


def _valid_idents(s: str, prerelease: bool) -> bool:
    for ident in s.split("."):
        if not _IDENT_CHARS.fullmatch(ident):
            return False
        if prerelease and _ascii_digits(ident) and len(ident) > 1 and ident[0] == "0":
            return False
    return True


SemVer = tuple[str, str, str, tuple[str, ...]]


def parse_semver(s: str) -> SemVer | None:
    if s and s[0] in "vV":
        s = s[1:]
    core, has_build, build = s.partition("+")
    if has_build and not _valid_idents(build, False):
        return None
    core, has_pre, pre = core.partition("-")
    pre_t: tuple[str, ...] = ()
    if has_pre:
        if not _valid_idents(pre, True):
            return None
        pre_t = tuple(pre.split("."))
    parts = core.split(".")
    if len(parts) > 3 or not all(_numeric_ident(p) for p in parts):
        return None
    parts += ["0"] * (3 - len(parts))
    return parts[0], parts[1], parts[2], pre_t


def _semver_arg(v: Any) -> str | None:
    """A sem_ver argument as version text: a string, or like flagd a number (1.5 -> "1.5")."""
    if isinstance(v, str):
        return v
    if is_number(v):
        return js_number_string(v)
    return None


def _cmp_pre_ident(x: str, y: str) -> int:
    xn, yn = _ascii_digits(x), _ascii_digits(y)
    if xn and yn:
        return _cmp_digits(x, y)
    if xn:
        return -1
    if yn:
        return 1
    bx, by = x.encode(), y.encode()
    return (bx > by) - (bx < by)


def compare_semver(a: SemVer, b: SemVer) -> int:
    for x, y in ((a[0], b[0]), (a[1], b[1]), (a[2], b[2])):
        c = _cmp_digits(x, y)
        if c:
            return c
    pa, pb = a[3], b[3]
    if not pa and not pb:
        return 0
    if not pa:
        return 1
    if not pb:
        return -1
    for x, y in zip(pa, pb, strict=False):
        c = _cmp_pre_ident(x, y)
        if c:
            return c
    return (len(pa) > len(pb)) - (len(pa) < len(pb))


_SEMVER_TESTS: dict[str, Callable[[SemVer, SemVer], bool]] = {
    "^": lambda a, b: a[0] == b[0],
    "~": lambda a, b: a[0] == b[0] and a[1] == b[1],
    "=": lambda a, b: compare_semver(a, b) == 0,
    "!=": lambda a, b: compare_semver(a, b) != 0,
    "<": lambda a, b: compare_semver(a, b) < 0,
    "<=": lambda a, b: compare_semver(a, b) <= 0,
    ">": lambda a, b: compare_semver(a, b) > 0,
    ">=": lambda a, b: compare_semver(a, b) >= 0,
}


def _sem_ver(a: Any, op: Any, b: Any) -> Any:
    sa, sb = _semver_arg(a), _semver_arg(b)
    if sa is None or sb is None or not isinstance(op, str):
        return None
    test = _SEMVER_TESTS.get(op)
    va = parse_semver(sa)
    vb = parse_semver(sb)
    if va is None or vb is None or test is None:
        return None
    return test(va, vb)


# Versions a rule with a constant op and version remembers per node: callers' versions
# repeat (a few app releases), and parsing is most of the operator's cost.
_SEMVER_MEMO_SIZE = 256
_MISSING: Any = object()


def _const_sem_ver(a: Node, op: Any, b: Any) -> Node | None:
    """sem_ver with a constant op and version, parsed once; None: use the general path."""
    sb = _semver_arg(b)
    if not isinstance(op, str) or sb is None:
        return None
    test = _SEMVER_TESTS.get(op)
    vb = parse_semver(sb)
    if test is None or vb is None:
        return None
    memo: dict[str, SemVer | None] = {}

    def sem_ver(st: EvalState, sc: Any) -> Any:
        x = _semver_arg(a(st, sc))
        if x is None:
            return None
        va = memo.get(x, _MISSING)
        if va is _MISSING:
            va = parse_semver(x)
            if len(memo) >= _SEMVER_MEMO_SIZE:
                memo.clear()
            memo[x] = va
        return None if va is None else test(va, vb)

    return sem_ver


@_op(("sem_ver",), 3, 3)
def _b_sem_ver(parts: list[Node]) -> Node:
    a, op, b = parts
    if op.__code__ is _CONST_CODE and b.__code__ is _CONST_CODE:
        fast = _const_sem_ver(a, op(None, None), b(None, None))  # type: ignore[arg-type]
        if fast is not None:
            return fast
    return lambda st, sc: _sem_ver(a(st, sc), op(st, sc), b(st, sc))
