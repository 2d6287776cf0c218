"""Validating a document: set-level and per-flag problems, with the paths and messages of
Go's flagset. A flag's targeting is validated by compiling it.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

from . import _keychars
from ._quote import go_quote as _q
from ._types import Problem
from .jsonlogic import Compiler, Node, is_number, type_name

_DOC_FIELDS = ("$evaluators", "$schema", "flags", "metadata")
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:Z|([+-])([0-9]{2}):([0-9]{2}))"
)
_KEY_EXTRA = set("_-./:")
_ASCII_KEY = re.compile(r"[A-Za-z0-9_\-./:]+")


def _parse_rfc3339(s: str) -> datetime | None:
    """RFC 3339 like Go's time.Parse(time.RFC3339, s): any number of fraction digits."""
    m = _RFC3339.fullmatch(s)
    if m is None:
        return None
    y, mo, d, h, mi, sec, frac, sign, oh, om = m.groups()
    try:
        tz = timezone.utc
        if sign:
            if int(oh) > 23 or int(om) > 59:
                return None
            off = timedelta(hours=int(oh), minutes=int(om))
            tz = timezone(off if sign == "+" else -off)
        micro = int((frac or "0")[:6].ljust(6, "0"))
        return datetime(int(y), int(mo), int(d), int(h), int(mi), int(sec), micro, tzinfo=tz)
    except ValueError:
        return None


def valid_flag_key(key: str) -> bool:
    """Non-empty; Unicode letters, decimal digits and _ - . / : only (case-sensitive)."""
    if _ASCII_KEY.fullmatch(key):
        return True
    if key == "":
        return False
    return all(c in _KEY_EXTRA or _ASCII_KEY.fullmatch(c) or _is_key_char(c) for c in key)


def _is_key_char(c: str) -> bool:
    """A non-ASCII letter or decimal digit by the fixed table of _keychars (Unicode 15.0.0),
    not by this interpreter's unicodedata: key validity must not depend on the Python
    version, nor differ from Go."""
    cp = ord(c)
    i = bisect.bisect_right(_keychars.STARTS, cp) - 1
    return i >= 0 and cp <= _keychars.ENDS[i]


def _is_primitive(v: Any) -> bool:
    return isinstance(v, (str, bool)) or is_number(v)


def _set_problems(doc: Mapping[str, Any], compiler: Compiler) -> tuple[list[Problem], set[str]]:
    """Set-level problems (sorted by path, like Go) and the names of bad evaluators."""
    probs: list[Problem] = []
    for k in sorted(doc):
        v = doc[k]
        if k == "$schema":
            if v is not None and not isinstance(v, str):
                probs.append(Problem("", "$schema", "must be a string, got " + type_name(v)))
        elif k == "flags":
            if not isinstance(v, dict):
                probs.append(Problem("", "flags", "must be an object, got " + type_name(v)))
        elif k in ("$evaluators", "metadata"):
            if v is not None and not isinstance(v, dict):
                probs.append(Problem("", k, "must be an object, got " + type_name(v)))
        else:
            probs.append(Problem("", k, "unknown top-level field"))
    if "flags" not in doc:
        probs.append(Problem("", "flags", "required"))
    raw_meta = doc.get("metadata")
    meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    for k in sorted(meta):
        v = meta[k]
        path = "metadata." + k
        if not _is_primitive(v):
            probs.append(
                Problem("", path, "must be a string, number or boolean, got " + type_name(v))
            )
        elif k in ("flagSetId", "version"):
            if not isinstance(v, str):
                probs.append(Problem("", path, "must be a string, got " + type_name(v)))
        elif k == "flagsync.generatedAt":
            if not isinstance(v, str):
                probs.append(
                    Problem("", path, "must be an RFC 3339 time string, got " + type_name(v))
                )
            elif _parse_rfc3339(v) is None:
                probs.append(Problem("", path, f"{_q(v)} is not an RFC 3339 time"))
        elif k == "flagsync.generation" and (
            not is_number(v) or not float(v).is_integer() or v < 0
        ):
            probs.append(Problem("", path, "must be a non-negative integer"))
    bad: set[str] = set()
    for name in sorted(compiler.evaluators):
        try:
            ce = compiler.evaluator(name)
            errs = ce.errs if ce is not None else []
        except RecursionError:
            errs = ["rule nested too deeply"]
        if errs:
            bad.add(name)
        probs.extend(Problem("", f"$evaluators.{name}", e) for e in errs)
    probs.sort(key=lambda p: p.path)  # stable, like Go's sort.SliceStable
    return probs, bad


class _Checked(NamedTuple):
    structural: list[Problem]
    targeting: list[Problem]
    rule: Node | None  # called as rule(state, ROOT)
    rule_error: str
    has_targeting: bool


_FLAG_FIELDS = frozenset(("state", "variants", "defaultVariant", "targeting", "metadata"))
_VARIANT_TYPES = frozenset((bool, str, int, float, dict))
_NUMBER_TYPES = frozenset((int, float))
_PRIMITIVE_TYPES = (str, int, float, bool)


def _well_formed(key: str, f: Any) -> bool:
    """A quick test for the common, valid flag: when True there is no structural problem
    and the full check (which builds every message) can be skipped. False proves nothing."""
    if type(f) is not dict or not f.keys() <= _FLAG_FIELDS or not _ASCII_KEY.fullmatch(key):
        return False
    if f.get("state") not in ("ENABLED", "DISABLED"):
        return False
    variants = f.get("variants")
    if type(variants) is not dict or not variants:
        return False
    types = set(map(type, variants.values()))
    if not types <= _VARIANT_TYPES or (len(types) > 1 and not types <= _NUMBER_TYPES):
        return False
    dv = f.get("defaultVariant")
    if dv is not None and (type(dv) is not str or dv not in variants):
        return False
    meta = f.get("metadata")
    if meta is not None:
        if type(meta) is not dict:
            return False
        for mk, mv in meta.items():
            if type(mv) not in _PRIMITIVE_TYPES:
                return False
            if mk in ("owner", "description", "source", "expiresAt") and type(mv) is not str:
                return False
            if mk == "expiresAt" and _parse_rfc3339(mv) is None:
                return False
    return True


def _check_flag(key: str, f: Any, compiler: Compiler) -> _Checked:
    if _well_formed(key, f):
        return _check_targeting(key, f.get("targeting"), compiler, [])
    base = "flags." + key
    structural: list[Problem] = []

    def add(fld: str, msg: str) -> None:
        structural.append(Problem(key, f"{base}.{fld}" if fld else base, msg))

    if not valid_flag_key(key):
        add("", f"invalid flag key {_q(key)}: use letters, digits and _ - . / : only")
    if not isinstance(f, dict):
        add("", "must be an object, got " + type_name(f))
        return _Checked(structural, [], None, "", False)
    bad_fields: set[str] = set()

    def decode_problem(fld: str, msg: str) -> None:
        bad_fields.add(fld)
        add(fld, msg)

    unknown: list[str] = []
    state: str = ""
    variants: dict[str, Any] = {}
    default_variant: str | None = None
    targeting: Any = None
    meta: dict[str, Any] = {}
    for k in sorted(f):
        v = f[k]
        if k == "state":
            if not isinstance(v, str):
                decode_problem(
                    "state", "must be a string (ENABLED or DISABLED), got " + type_name(v)
                )
            else:
                state = v
        elif k == "variants":
            if not isinstance(v, dict):
                decode_problem("variants", "must be an object, got " + type_name(v))
            else:
                variants = v
        elif k == "defaultVariant":
            if isinstance(v, str):
                default_variant = v
            elif v is not None:
                decode_problem("defaultVariant", "must be a string or null, got " + type_name(v))
        elif k == "targeting":
            targeting = v
        elif k == "metadata":
            if isinstance(v, dict):
                meta = v
            elif v is not None:
                decode_problem("metadata", "must be an object, got " + type_name(v))
        else:
            unknown.append(k)
    # like Go: the fields' own problems (by field), then the unknown fields
    for k in unknown:
        add("", f"unknown field {_q(k)}")

    if "state" not in bad_fields and state not in ("ENABLED", "DISABLED"):
        if state == "":
            add("state", "required (ENABLED or DISABLED)")
        else:
            add("state", f"{_q(state)} is not a state (want ENABLED or DISABLED)")
    names = sorted(variants)
    if "variants" not in bad_fields:
        if "variants" not in f:
            add("variants", "required")
        elif not variants:
            add("variants", "must not be empty")
        by_type: dict[str, list[str]] = {}
        for name in names:
            t = type_name(variants[name])
            if t not in ("boolean", "string", "number", "object"):
                add(
                    "variants." + name,
                    f"unsupported value type {t} (want boolean, string, number or object)",
                )
                continue
            by_type.setdefault(t, []).append(name)
        if len(by_type) > 1:
            parts = [f"{t} ({', '.join(by_type[t])})" for t in sorted(by_type)]
            add("variants", "values must all have one type, found " + " and ".join(parts))
    # like flagd, "defaultVariant": "" means no default variant (unless one is named "")
    if (
        default_variant is not None
        and default_variant != ""
        and "variants" not in bad_fields
        and variants
        and default_variant not in variants
    ):
        add(
            "defaultVariant",
            f"{_q(default_variant)} is not a variant (have: {', '.join(names)})",
        )
    for mk in sorted(meta):
        mv = meta[mk]
        if not _is_primitive(mv):
            add("metadata." + mk, "must be a string, number or boolean, got " + type_name(mv))
            continue
        if mk in ("owner", "description", "source"):
            if not isinstance(mv, str):
                add("metadata." + mk, "must be a string, got " + type_name(mv))
        elif mk == "expiresAt":
            if not isinstance(mv, str):
                add("metadata." + mk, "must be an RFC 3339 time string, got " + type_name(mv))
            elif _parse_rfc3339(mv) is None:
                add("metadata." + mk, f"{_q(mv)} is not an RFC 3339 time")

    return _check_targeting(key, targeting, compiler, structural)


def _check_targeting(
    key: str, targeting: Any, compiler: Compiler, structural: list[Problem]
) -> _Checked:
    tprobs: list[Problem] = []
    rule: Node | None = None
    rule_error = ""
    has_targeting = targeting is not None and targeting != {}
    if has_targeting:
        try:
            rule, errs = compiler.targeting(targeting)
        except RecursionError:
            rule, errs = None, ["rule nested too deeply"]
        tprobs = [Problem(key, f"flags.{key}.targeting", e) for e in errs]
        if errs:
            rule = None
            rule_error = "targeting cannot be evaluated: " + "; ".join(errs)
    return _Checked(structural, tprobs, rule, rule_error, has_targeting)


def _evaluators(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    ev = doc.get("$evaluators")
    return ev if isinstance(ev, dict) else {}


def validate_flag(key: str, f: Any, evaluators: Mapping[str, Any] | None = None) -> list[Problem]:
    """Every problem of one flag, given the document's $evaluators."""
    c = _check_flag(key, f, Compiler(evaluators))
    return c.structural + c.targeting
