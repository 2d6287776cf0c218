"""A compiled flag: its variants read per requested type, its rule, its result metadata,
and the results that do not depend on the caller, made once.

Mirrors compiledFlag and compiledVariant of the Go flagset package (set.go).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from . import canonical
from ._quote import go_quote as _q
from ._types import _DEFAULT, ErrorCode, Reason, Result, Type
from ._validate import _Checked
from .jsonlogic import is_number, type_name

_MISMATCH_NAMES = {
    Type.BOOLEAN: "boolean",
    Type.STRING: "string",
    Type.INTEGER: "integer",
    Type.FLOAT: "float",
    Type.OBJECT: "object",
}


class _Variant:
    """A variant's value per requested type (TYPE_MISMATCH messages are made on demand)."""

    __slots__ = ("name", "values", "raw", "matched")

    def __init__(self, name: str, raw: Any) -> None:
        self.name = name
        self.raw = raw
        # successful results naming this variant, per (reason, type), made on first use:
        # they do not depend on the caller, so every evaluation can share them
        self.matched: dict[tuple[Reason, Type], Result] | None = None
        self.values: dict[Type, Any] = {}
        if isinstance(raw, bool):
            self.values[Type.BOOLEAN] = raw
        elif isinstance(raw, str):
            self.values[Type.STRING] = raw
        elif isinstance(raw, (int, float)):
            f = float(raw)
            self.values[Type.FLOAT] = f
            if f.is_integer() and -(2**63) <= raw < 2**63:
                self.values[Type.INTEGER] = int(raw)
        elif isinstance(raw, dict):
            self.values[Type.OBJECT] = raw

    def mismatch(self, t: Type) -> str:
        raw = self.raw
        if t is Type.INTEGER and is_number(raw):
            return f"variant {_q(self.name)} is {canonical.js_number_string(raw)}, not an integer"
        return f"variant {_q(self.name)} is {type_name(raw)}, not {_MISMATCH_NAMES[t]}"


class _Flag:
    __slots__ = (
        "key",
        "disabled",
        "variants",
        "default",
        "rule",
        "rule_error",
        "metadata",
        "definition",
        "static",
    )

    def __init__(
        self,
        key: str,
        definition: Mapping[str, Any],
        checked: _Checked,
        set_meta: Mapping[str, Any],
    ) -> None:
        self.key = key
        self.disabled = definition.get("state") == "DISABLED"
        self.variants = {n: _Variant(n, v) for n, v in definition["variants"].items()}
        dv = definition.get("defaultVariant")
        self.default: _Variant | None = self.variants.get(dv) if isinstance(dv, str) else None
        self.rule = checked.rule
        self.rule_error = checked.rule_error
        fm = definition.get("metadata")
        if isinstance(fm, dict) and fm:
            merged = dict(set_meta)
            merged.update(fm)
            self.metadata: Mapping[str, Any] = MappingProxyType(merged)
        else:
            self.metadata = set_meta
        self.definition = definition
        # successful STATIC results do not depend on the caller: cached per type on first use
        self.static: dict[Type, Result] = {}

    def resolve(self, v: _Variant | None, reason: Reason, t: Type, default: Any) -> Result:
        if v is None:
            return Result(default, None, _DEFAULT, None, "", self.metadata)
        m = v.matched
        if m is not None:
            r = m.get((reason, t))
            if r is not None:
                return r
        if t not in v.values:
            return Result(
                default, None, Reason.ERROR, ErrorCode.TYPE_MISMATCH, v.mismatch(t), self.metadata
            )
        r = Result(v.values[t], v.name, reason, None, "", self.metadata)
        if m is None:
            m = v.matched = {}
        m[(reason, t)] = r  # a race only makes two equal results; either may stay
        return r
