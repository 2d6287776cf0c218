"""Compiling JsonLogic: a rule (and each $evaluators entry, once) becomes a tree of
closures; every problem is found here, with the messages and paths of Go's flagset.
Mirrors jsonlogic_compile.go.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

# The operator modules fill the operator table when imported.
from . import (  # noqa: F401
    _jsonlogic_arith,
    _jsonlogic_arrays,
    _jsonlogic_compare,
    _jsonlogic_fractional,
    _jsonlogic_logic,
    _jsonlogic_semver,
    _jsonlogic_string,
    _jsonlogic_vars,
)
from ._jsonlogic_core import (
    _CONST_CODE,
    _CUSTOM_OPS,
    _NO_SCOPE,
    _OPS,
    EvalState,
    Node,
    _const,
)
from ._jsonlogic_values import (
    is_number,
)
from ._jsonlogic_vars import (
    _resolve,
    _split_path,
    _walk,
)
from ._quote import go_quote


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


# Where a rule element sits: None at the rule's root, else (parent, op, index), the
# index-th argument of op, or the index-th element of an array when op is "". Built
# with one tuple per element and rendered only for a message (Go: rulePath).
_At = tuple[Any, str, int] | None


def _path(at: _At) -> str:
    """at as the messages write it, e.g. "if[0].in[1]" or "and[0][2]"."""
    steps: list[tuple[str, int]] = []
    while at is not None:
        at, op, i = at
        steps.append((op, i))
    out = ""
    for op, i in reversed(steps):
        if op:
            out = f"{out}.{op}" if out else op
        out = f"{out}[{i}]"
    return out


def _where(at: _At) -> str:
    return f" (at {_path(at)})" if at is not None else ""


def _because(errs: list[str]) -> str:
    """Why an evaluator is invalid, in a message about a $ref to it: its first problem
    only (Go: invalidBecause), so messages do not double at every level of refs."""
    if len(errs) == 1:
        return errs[0]
    return f"{errs[0]} (and {len(errs) - 1} more)"


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
        ce.node = self._compile(raw, None, ce.errs)
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
        node = self._compile(raw, None, errs)
        if self._size > MAX_RULE_NODES and not errs:
            return None, [_too_large()]
        if self._deepest > MAX_RULE_DEPTH and not errs:
            return None, [_too_deep()]
        if errs:
            return None, errs
        return node, []

    def _compile(self, raw: Any, at: _At, errs: list[str]) -> Node:
        self._size += 1
        if isinstance(raw, list):
            if _is_literal(raw):
                return _const(raw)  # no operation inside: nothing to compile
            self._level += 1
            if self._level > self._deepest:
                self._deepest = self._level
            try:
                items = [self._compile(x, (at, "", i), errs) for i, x in enumerate(raw)]
            finally:
                self._level -= 1
            if all(f.__code__ is _CONST_CODE for f in items):
                return _const(raw)
            return lambda st, sc: [f(st, sc) for f in items]
        if not isinstance(raw, dict) or len(raw) != 1:
            return _const(raw)
        self._level += 1
        if self._level > self._deepest:
            self._deepest = self._level
        try:
            return self._compile_op(raw, at, errs)
        finally:
            self._level -= 1

    def _compile_op(self, raw: dict[str, Any], at: _At, errs: list[str]) -> Node:
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
        nodes = [self._compile(a, (at, op, i), errs) for i, a in enumerate(args)]
        if wrong_arity and (custom or len(args) < lo):
            return _const(None)
        if hi >= 0 and len(nodes) > hi:
            nodes = nodes[:hi]
        return builder(nodes)

    def _ref(self, name: Any, at: _At, errs: list[str]) -> Node:
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

    def _var(self, arg: Any, at: _At, errs: list[str]) -> Node:
        args = arg if isinstance(arg, list) else [arg]
        if len(args) > 2:
            errs.append(f'operator "var" takes 0 to 2 arguments, got {len(args)}{_where(at)}')
        def_f = self._compile(args[1], (at, "var", 1), errs) if len(args) >= 2 else None
        if not args:
            return lambda st, sc: st.data() if sc is _NO_SCOPE else sc
        path_f = self._compile(args[0], (at, "var", 0), errs)
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
