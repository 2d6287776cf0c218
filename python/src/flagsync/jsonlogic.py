"""JsonLogic with the flagd operators, compiled once into Python closures.

Semantics follow json-logic-js and JavaScript (loose equality, relational comparison,
number formatting, truthiness) exactly as the Go flagset package does, so that a Go
and a Python reader give the same answer for every rule. A compiled rule is a function
of the evaluation data (the caller's context plus targetingKey and $flagd).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import mmh3

from ._quote import go_quote
from .canonical import js_number_string

__all__ = [
    "CompileError",
    "EvalState",
    "Node",
    "ROOT",
    "Rule",
    "compile_rule",
    "is_number",
    "js_loose_equal",
    "js_strict_equal",
    "js_to_number",
    "js_to_string",
    "murmur3",
    "truthy",
    "type_name",
]

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


# ---------------------------------------------------------------------------
# JavaScript value semantics


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


# ---------------------------------------------------------------------------
# semantic versions: semver 2.0.0 with an optional leading v/V, and like flagd partial
# versions ("1", "1.2", also "1.2-beta": missing parts are 0). Numeric parts are kept as
# their digits (no leading zeros), so parts of any size compare numerically, as in flagd.

_IDENT_CHARS = re.compile(r"[0-9A-Za-z-]+")


def _numeric_ident(p: str) -> bool:
    return _ascii_digits(p) and (len(p) == 1 or p[0] != "0")


def _ascii_digits(p: str) -> bool:
    return p != "" and all("0" <= c <= "9" for c in p)


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


# ---------------------------------------------------------------------------
# fractional


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


# ---------------------------------------------------------------------------
# var


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


# ---------------------------------------------------------------------------
# the compiler (error messages and paths as in Go's flagset)


def type_name(v: Any) -> str:
    """The JSON type of v as messages name it (null, boolean, string, number, ...)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, str):
        return "string"
    if is_number(v):
        return "number"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def _q(s: str) -> str:
    """Go's %q for the names that appear in messages."""
    return go_quote(s)


def _where(at: str) -> str:
    return f" (at {at})" if at else ""


def _because(errs: list[str]) -> str:
    """Why an evaluator is invalid, in a message about a $ref to it: its first problem
    only (Go: invalidBecause), so messages do not double at every level of refs."""
    if len(errs) == 1:
        return errs[0]
    return f"{errs[0]} (and {len(errs) - 1} more)"


def _join(at: str, elem: str) -> str:
    return f"{at}.{elem}" if at else elem


# A rule's size after $ref expansion is bounded (Go: maxRuleNodes): evaluators can refer
# to each other many times over (e2 = [e1, e1], e3 = [e2, e2], ...).
MAX_RULE_NODES = 100_000
# A rule with every $ref inlined nests at most this many levels (Go: MaxDepth).
MAX_RULE_DEPTH = 64


def _too_large() -> str:
    return (
        f"rule is too large: more than {MAX_RULE_NODES} operations and values after $ref expansion"
    )


def _too_deep() -> str:
    return f"rule nests deeper than {MAX_RULE_DEPTH} levels once every $ref is inlined"


def _is_literal(v: Any, depth: int = 0) -> bool:
    """No operation (an object with exactly one key) inside: v evaluates to itself."""
    if isinstance(v, list):
        if depth > MAX_RULE_DEPTH:
            return False
        return all(_is_literal(x, depth + 1) for x in v)
    if isinstance(v, dict):
        return len(v) != 1
    return True


def _refs(raw: Any) -> Iterator[str]:
    """The evaluator names raw refers to, in the order the compiler meets them."""
    if isinstance(raw, list):
        if not _is_literal(raw):
            for x in raw:
                yield from _refs(x)
        return
    if not isinstance(raw, dict) or len(raw) != 1:
        return
    ((op, arg),) = raw.items()
    if op == "$ref":
        if isinstance(arg, str):
            yield arg
        return
    args = arg if isinstance(arg, list) else [arg]
    if op == "var":
        if len(args) >= 2:
            yield from _refs(args[1])
        if args:
            yield from _refs(args[0])
    elif op in _OPS:
        for a in args:
            yield from _refs(a)


class _Evaluator:
    __slots__ = ("node", "errs", "size", "height")

    def __init__(self) -> None:
        self.node: Node | None = None
        self.errs: list[str] = []
        self.size = 0  # nodes with every $ref expanded
        self.height = 0  # nesting levels with every $ref inlined


class Compiler:
    """Compiles the rules of one document; $evaluators are compiled once and shared."""

    def __init__(self, evaluators: Mapping[str, Any] | None = None) -> None:
        self.evaluators: Mapping[str, Any] = evaluators or {}
        self._done: dict[str, _Evaluator] = {}
        self._active: set[str] = set()
        # nodes of the current rule, its current nesting level and deepest level so far
        self._size = 0
        self._level = 0
        self._deepest = 0

    def evaluator(self, name: str) -> _Evaluator | None:
        """The compiled $evaluators entry (compiled on first use)."""
        ce = self._done.get(name)
        if ce is not None:
            return ce
        if name not in self.evaluators:
            return None
        self._compile_from(name)
        return self._done[name]

    def _compile_from(self, root: str) -> None:
        """Compile root and the evaluators it refers to, those first (depth-first, in the
        order the compiler meets the $refs), without recursing per $ref: a chain of
        thousands of $refs costs no stack. Results and messages are those of compiling
        each $ref when it is met, as Go does; evaluators on the way stay active, so a
        $ref back to one of them is a cycle."""
        self._active.add(root)
        stack = [(root, _refs(self.evaluators[root]))]
        while stack:
            name, refs = stack[-1]
            for ref in refs:
                if ref in self._done or ref in self._active or ref not in self.evaluators:
                    continue
                self._active.add(ref)
                stack.append((ref, _refs(self.evaluators[ref])))
                break
            else:
                stack.pop()
                self._done[name] = self._compile_evaluator(self.evaluators[name])
                self._active.discard(name)

    def _compile_evaluator(self, raw: Any) -> _Evaluator:
        ce = _Evaluator()
        if not isinstance(raw, dict):
            ce.errs.append("must be a JsonLogic object, got " + type_name(raw))
            return ce
        outer = (self._size, self._level, self._deepest)
        self._size = self._level = self._deepest = 0
        ce.node = self._compile(raw, "", ce.errs)
        ce.size, ce.height = self._size, self._deepest
        self._size, self._level, self._deepest = outer
        if ce.size > MAX_RULE_NODES and not ce.errs:
            ce.errs.append(_too_large())
        if ce.height > MAX_RULE_DEPTH and not ce.errs:
            ce.errs.append(_too_deep())
        return ce

    def targeting(self, raw: Any) -> tuple[Node | None, list[str]]:
        """Compile a flag's targeting; the errors list every reason it cannot be evaluated.

        The node is called as node(state, ROOT) (no wrapper: one call less per evaluation).
        """
        if not isinstance(raw, dict):
            return None, ["must be a JsonLogic object, got " + type_name(raw)]
        errs: list[str] = []
        self._size = self._level = self._deepest = 0
        node = self._compile(raw, "", errs)
        if self._size > MAX_RULE_NODES and not errs:
            return None, [_too_large()]
        if self._deepest > MAX_RULE_DEPTH and not errs:
            return None, [_too_deep()]
        if errs:
            return None, errs
        return node, []

    def _compile(self, raw: Any, at: str, errs: list[str]) -> Node:
        self._size += 1
        if isinstance(raw, list):
            if _is_literal(raw):
                return _const(raw)  # no operation inside: nothing to compile
            self._level += 1
            self._deepest = max(self._deepest, self._level)
            try:
                items = [self._compile(x, f"{at}[{i}]", errs) for i, x in enumerate(raw)]
            finally:
                self._level -= 1
            if all(f.__code__ is _CONST_CODE for f in items):
                return _const(raw)
            return lambda st, sc: [f(st, sc) for f in items]
        if not isinstance(raw, dict) or len(raw) != 1:
            return _const(raw)
        self._level += 1
        self._deepest = max(self._deepest, self._level)
        try:
            return self._compile_op(raw, at, errs)
        finally:
            self._level -= 1

    def _compile_op(self, raw: dict[str, Any], at: str, errs: list[str]) -> Node:
        ((op, arg),) = raw.items()
        if op == "$ref":
            return self._ref(arg, at, errs)
        if op == "var":
            return self._var(arg, at, errs)
        spec = _OPS.get(op)
        if spec is None:
            errs.append(f"unknown operator {_q(op)}{_where(at)}")
            return _const(None)
        builder, lo, hi = spec
        args = arg if isinstance(arg, list) else [arg]
        # Too few arguments is a load problem; extra ones are ignored (json-logic-js). A
        # custom (flagd) operator with the wrong number of arguments is null, as in flagd.
        custom = op in _CUSTOM_OPS
        wrong_arity = len(args) < lo or (hi >= 0 and len(args) > hi)
        if wrong_arity and not custom and len(args) < lo:
            errs.append(
                f"operator {_q(op)} takes {_arity_text(lo, hi)}, got {len(args)}{_where(at)}"
            )
        nodes = [self._compile(a, f"{_join(at, op)}[{i}]", errs) for i, a in enumerate(args)]
        if wrong_arity and (custom or len(args) < lo):
            return _const(None)
        if hi >= 0 and len(nodes) > hi:
            nodes = nodes[:hi]
        return builder(nodes)

    def _ref(self, name: Any, at: str, errs: list[str]) -> Node:
        if not isinstance(name, str):
            errs.append(
                f"$ref must name an evaluator (a string), got {type_name(name)}{_where(at)}"
            )
            return _const(None)
        if name in self._active:
            errs.append(f"$ref {_q(name)} is cyclic{_where(at)}")
            return _const(None)
        ce = self.evaluator(name)
        if ce is None:
            errs.append(f"$ref {_q(name)}: no such evaluator{_where(at)}")
            return _const(None)
        if ce.errs or ce.node is None:
            errs.append(f"$ref {_q(name)}: evaluator is invalid: {_because(ce.errs)}{_where(at)}")
            return _const(None)
        self._size += ce.size
        # the evaluator's rule takes the place of the {"$ref": name} object
        self._deepest = max(self._deepest, self._level - 1 + ce.height)
        return ce.node

    def _var(self, arg: Any, at: str, errs: list[str]) -> Node:
        args = arg if isinstance(arg, list) else [arg]
        if len(args) > 2:
            errs.append(f'operator "var" takes 0 to 2 arguments, got {len(args)}{_where(at)}')
        sub = _join(at, "var")
        def_f = self._compile(args[1], sub + "[1]", errs) if len(args) >= 2 else None
        if not args:
            return lambda st, sc: st.data() if sc is _NO_SCOPE else sc
        path_f = self._compile(args[0], sub + "[0]", errs)
        if path_f.__code__ is _CONST_CODE:
            segs = _split_path(path_f(None, None))  # type: ignore[arg-type]
            # "$flagd" is the evaluator's, never the caller's attribute of that name
            if segs is not None and len(segs) == 1 and segs[0] != "$flagd":
                key = segs[0]

                def simple(st: EvalState, sc: Any) -> Any:
                    if sc is _NO_SCOPE:
                        ctx = st.context
                        if key in ctx:
                            v = ctx[key]
                            if v is not None or def_f is None:
                                return v
                            return def_f(st, sc)
                        ok, v = st.lookup(key)
                    else:
                        ok, v = _walk(sc, [key], 0)
                    if ok and v is not None:
                        return v
                    return def_f(st, sc) if def_f is not None else None

                return simple

            def static(st: EvalState, sc: Any) -> Any:
                ok, v = _resolve(st, sc, segs)
                if ok and v is not None:
                    return v
                return def_f(st, sc) if def_f is not None else None

            return static

        def dynamic(st: EvalState, sc: Any) -> Any:
            ok, v = _resolve(st, sc, _split_path(path_f(st, sc)))
            if ok and v is not None:
                return v
            return def_f(st, sc) if def_f is not None else None

        return dynamic


def _arity_text(lo: int, hi: int) -> str:
    if lo == hi == 1:
        return "1 argument"
    if lo == hi:
        return f"{lo} arguments"
    if hi < 0:
        return f"at least {lo} arguments"
    return f"{lo} to {hi} arguments"


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


@_op(("sem_ver",), 3, 3)
def _b_sem_ver(parts: list[Node]) -> Node:
    a, op, b = parts
    if op.__code__ is _CONST_CODE and b.__code__ is _CONST_CODE:
        fast = _const_sem_ver(a, op(None, None), b(None, None))  # type: ignore[arg-type]
        if fast is not None:
            return fast
    return lambda st, sc: _sem_ver(a(st, sc), op(st, sc), b(st, sc))


@_op(("fractional",), 1, -1)
def _b_fractional(parts: list[Node]) -> Node:
    return lambda st, sc: _fractional(st, [f(st, sc) for f in parts])


def compile_rule(raw: Any, evaluators: Mapping[str, Any] | None = None) -> Rule:
    """Compile one JsonLogic rule; raises CompileError listing what cannot be evaluated."""
    node, errs = Compiler(evaluators).targeting(raw)
    if node is None:
        raise CompileError("; ".join(errs))

    def rule(state: EvalState) -> Any:
        return node(state, ROOT)

    return rule
