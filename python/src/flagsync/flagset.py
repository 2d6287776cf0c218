"""The flagsync snapshot format: parse, validate, compile and evaluate flag sets.

This mirrors the Go package github.com/flagsync/flagsync/flagset: same problems (paths and
messages), same evaluation results (value, variant, reason, error code, metadata) and the
same canonical encoding and revision. A FlagSet is immutable once built, so readers can
share one between threads and replace it with a single reference assignment.
"""

from __future__ import annotations

import bisect
import contextlib
import enum
import gc
import itertools
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any, NamedTuple

from . import _keychars, _yaml, canonical
from ._quote import go_quote as _q
from .jsonlogic import ROOT, Compiler, EvalState, Node, is_number, murmur3, type_name

__all__ = [
    "ErrorCode",
    "FlagSet",
    "MAX_DEPTH",
    "MAX_DOCUMENT_SIZE",
    "ParseError",
    "Problem",
    "Reason",
    "Result",
    "Type",
    "compile_document",
    "decode_json",
    "diff",
    "load",
    "murmur3",
    "parse",
    "validate",
    "validate_flag",
]

MAX_DOCUMENT_SIZE = 64 << 20
MAX_DEPTH = 64


class Type(str, enum.Enum):
    """The value type a caller asks for."""

    BOOLEAN = "boolean"
    STRING = "string"
    INTEGER = "integer"
    FLOAT = "float"
    OBJECT = "object"


class Reason(str, enum.Enum):
    STATIC = "STATIC"
    TARGETING_MATCH = "TARGETING_MATCH"
    DEFAULT = "DEFAULT"
    DISABLED = "DISABLED"
    ERROR = "ERROR"


class ErrorCode(str, enum.Enum):
    FLAG_NOT_FOUND = "FLAG_NOT_FOUND"
    PARSE_ERROR = "PARSE_ERROR"
    TYPE_MISMATCH = "TYPE_MISMATCH"
    GENERAL = "GENERAL"


# Reading a member off an Enum class runs a descriptor (Python 3.11): evaluation's hot
# path uses these module-level names instead.
_STATIC = Reason.STATIC
_TARGETING_MATCH = Reason.TARGETING_MATCH
_DEFAULT = Reason.DEFAULT
_ERROR = Reason.ERROR
_FLAG_NOT_FOUND = ErrorCode.FLAG_NOT_FOUND


class ParseError(ValueError):
    """The document could not be decoded (syntax, size, depth, encoding)."""


@dataclass(frozen=True)
class Problem:
    """One validation finding; flag is "" for set-level problems."""

    flag: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


_EMPTY: Mapping[str, Any] = MappingProxyType({})


class Result(NamedTuple):
    """One evaluation's outcome. metadata is shared: do not mutate it."""

    value: Any
    variant: str | None
    reason: Reason
    error_code: ErrorCode | None = None
    error_message: str = ""
    metadata: Mapping[str, Any] = _EMPTY


# ---------------------------------------------------------------------------
# parse


def _reject_constant(name: str) -> Any:
    raise ParseError(f"invalid JSON number {name}")


def _parse_int(s: str) -> int | float:
    v = int(s)
    if -(2**53) < v < 2**53:
        return v
    return _parse_float(s)


def _parse_float(s: str) -> float:
    """A JSON number as a double; one beyond the double range is a parse error (as in Go)."""
    f = float(s)
    if math.isinf(f):
        raise ParseError(f"number {s[:40]} is beyond the double range")
    return f


_JSON_STRING_OR_NOISE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[^\[\]{}"]+')
_BRACKET_DEPTH = {"[": 1, "{": 1, "]": -1, "}": -1}


def _check_json_depth(text: str) -> None:
    """Fail fast on nesting deeper than MAX_DEPTH, before json.loads recurses."""
    brackets = _JSON_STRING_OR_NOISE.sub("", text)  # strings and everything but brackets
    if len(brackets) <= MAX_DEPTH:
        return
    deepest = max(itertools.accumulate(map(_BRACKET_DEPTH.get, brackets, itertools.repeat(0))))
    if deepest > MAX_DEPTH:
        raise ParseError(f"document nesting is deeper than the limit of {MAX_DEPTH} levels")


# A \u escape of a UTF-16 surrogate (D800-DFFF): only such text can decode to a lone one.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def scrub_surrogates(v: Any) -> Any:
    """Replace lone surrogates in the strings and keys of decoded JSON by U+FFFD.

    json.loads keeps an unpaired "\\ud800" escape as a lone surrogate, which no UTF-8
    output can hold; Go's encoding/json reads it as U+FFFD, and so do we (a valid
    pair has already been combined into one code point by then).
    """
    if isinstance(v, str):
        return _LONE_SURROGATE.sub("\ufffd", v)
    if isinstance(v, dict):  # keeps a dict subclass's type (the eval CLI marks objects)
        return type(v)((scrub_surrogates(k), scrub_surrogates(x)) for k, x in v.items())
    if isinstance(v, list):
        return [scrub_surrogates(x) for x in v]
    return v


def decode_json(text: str, **kw: Any) -> Any:
    """json.loads with the nesting limit checked first and lone surrogates scrubbed."""
    _check_json_depth(text)
    v = json.loads(text, **kw)
    if _SURROGATE_ESCAPE.search(text):
        v = scrub_surrogates(v)
    return v


def _yaml_load(text: str, size: int) -> Any:
    try:
        return _yaml.load(text, size, MAX_DEPTH)
    except _yaml.YAMLError as e:
        raise ParseError(f"yaml: {e}") from e


def parse(data: bytes | str) -> dict[str, Any]:
    """Decode a JSON or YAML document (JSON when the first non-space byte is '{')."""
    if isinstance(data, str):
        text = data
        raw_len = len(data.encode("utf-8"))
    else:
        text = ""
        raw_len = len(data)
    if raw_len > MAX_DOCUMENT_SIZE:
        raise ParseError(
            f"document is {raw_len} bytes, larger than the limit of {MAX_DOCUMENT_SIZE} bytes"
        )
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ParseError(f"document is not valid UTF-8 (byte offset {e.start})") from e
    stripped = text.lstrip(" \t\r\n\ufeff")
    if stripped.startswith("{"):
        try:
            # ints beyond 2^53 become floats (doubles), like in Go
            doc = decode_json(
                stripped,
                parse_int=_parse_int,
                parse_float=_parse_float,
                parse_constant=_reject_constant,
            )
        except json.JSONDecodeError as e:
            raise ParseError(f"json: {e}") from e
    else:
        doc = _yaml_load(text, raw_len)
    if not isinstance(doc, dict):
        raise ParseError("document is not an object")
    return doc


# ---------------------------------------------------------------------------
# validate and compile (problem paths and messages as in Go's flagset)

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


def validate(doc: Mapping[str, Any]) -> list[Problem]:
    """Every problem of the document: set level first, then flags in key order."""
    return compile_document(doc)[1]


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
    _digest: str | None
    __slots__ = (
        "key",
        "disabled",
        "variants",
        "default",
        "rule",
        "rule_error",
        "metadata",
        "definition",
        "_digest",
        "static",
    )

    @property
    def digest(self) -> str:
        """A fingerprint of the definition for diffs (computed when a diff first needs it).

        repr of the decoded definition is C-fast and, unlike ==, tells true from 1; two
        snapshots written canonically by the daemon decode to identical key orders.
        """
        d: str | None = self._digest
        if d is None:
            d = repr(self.definition)
            self._digest = d
        return d

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
        self._digest = None
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


_TYPES = {t.value: t for t in Type}


class FlagSet:
    """A validated, compiled, immutable flag set. Safe to share between threads."""

    __slots__ = ("_flags", "_doc", "_meta", "_revision", "_keys", "_generation", "_generated_at")

    def __init__(
        self,
        flags: dict[str, _Flag],
        doc: dict[str, Any],
        meta: Mapping[str, Any],
        revision: str,
    ) -> None:
        self._flags = flags
        self._keys = sorted(flags)
        self._doc = doc
        self._meta = meta
        self._revision = revision
        g: Any = meta.get("flagsync.generation")
        self._generation = int(g) if is_number(g) and float(g).is_integer() else 0
        ga = meta.get("flagsync.generatedAt")
        self._generated_at = _parse_rfc3339(ga) if isinstance(ga, str) else None

    # accessors -----------------------------------------------------------------
    def keys(self) -> list[str]:
        return list(self._keys)

    def __len__(self) -> int:
        return len(self._flags)

    def __contains__(self, key: object) -> bool:
        return key in self._flags

    def flag(self, key: str) -> Mapping[str, Any] | None:
        """The definition of key as compiled (shared; do not mutate)."""
        f = self._doc["flags"].get(key)
        return f if isinstance(f, dict) else None

    @property
    def document(self) -> Mapping[str, Any]:
        """The document of the valid flags (shared; do not mutate)."""
        return self._doc

    @property
    def metadata(self) -> Mapping[str, Any]:
        return self._meta

    @property
    def flag_set_id(self) -> str:
        v = self._meta.get("flagSetId")
        return v if isinstance(v, str) else ""

    @property
    def revision(self) -> str:
        """metadata.version if present, else the computed revision."""
        return self._revision

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def generated_at(self) -> datetime | None:
        return self._generated_at

    def digest(self, key: str) -> str | None:
        f = self._flags.get(key)
        return f.digest if f else None

    def canonical(self) -> bytes:
        """The canonical encoding of document()."""
        return canonical.encode_document(self._doc)

    # evaluation ----------------------------------------------------------------
    def evaluate(
        self,
        key: str,
        typ: Type | str,
        default: Any,
        context: Mapping[str, Any] | None = None,
        *,
        now: int | None = None,
        targeting_key: str | None = None,
    ) -> Result:
        """Resolve key for a caller; context holds the caller's attributes incl. targetingKey.

        targeting_key, when given, is the targetingKey (it overrides one in context): callers
        that hold it apart, like OpenFeature's EvaluationContext, need not copy context.
        now is the $flagd.timestamp in Unix seconds (default: the clock, read only when a
        rule uses it). Results that name a variant do not depend on the caller and are shared
        objects: do not mutate them.
        """
        f = self._flags.get(key)
        if f is None:
            # a constant message, like Go: the caller knows the key, and a path that
            # probes for flags must not cost more than a static flag
            return Result(default, None, _ERROR, _FLAG_NOT_FOUND, "flag not found", self._meta)
        t = typ if isinstance(typ, Type) else _TYPES.get(typ)
        if t is None:
            return Result(
                default,
                None,
                Reason.ERROR,
                ErrorCode.GENERAL,
                f"unknown value type {typ!r}",
                f.metadata,
            )
        r = f.static.get(t)
        if r is not None:
            return r
        if f.disabled:
            return Result(default, None, Reason.DISABLED, None, "", f.metadata)
        if f.rule_error:
            return Result(
                default, None, Reason.ERROR, ErrorCode.PARSE_ERROR, f.rule_error, f.metadata
            )
        if f.rule is None:
            r = f.resolve(f.default, _STATIC, t, default)
            if r.reason is _STATIC:
                f.static[t] = r
            return r
        ctx = context or _EMPTY
        if targeting_key is not None and "targetingKey" in ctx:
            ctx = dict(ctx)
            ctx["targetingKey"] = targeting_key
            targeting_key = None
        st = EvalState(ctx, key, now, targeting_key)
        try:
            out = f.rule(st, ROOT)
        except RecursionError:
            return Result(
                default,
                None,
                Reason.ERROR,
                ErrorCode.GENERAL,
                "rule nested too deeply",
                f.metadata,
            )
        if out is None:
            return f.resolve(f.default, _DEFAULT, t, default)
        if out is True:
            out = "true"
        elif out is False:
            out = "false"
        elif isinstance(out, (int, float)):
            out = canonical.js_number_string(out)  # like flagd: the number's JSON text
        elif not isinstance(out, str):
            return Result(
                default,
                None,
                Reason.ERROR,
                ErrorCode.GENERAL,
                f"targeting returned {type_name(out)}, not a variant name",
                f.metadata,
            )
        v = f.variants.get(out)
        if v is None:
            return Result(
                default,
                None,
                Reason.ERROR,
                ErrorCode.GENERAL,
                f"targeting returned {_q(out)}, which is not a variant",
                f.metadata,
            )
        m = v.matched
        if m is not None:  # f.resolve's cache, looked up here to spare a call
            r = m.get((_TARGETING_MATCH, t))
            if r is not None:
                return r
        return f.resolve(v, _TARGETING_MATCH, t, default)


def compile_document(doc: Mapping[str, Any]) -> tuple[FlagSet, list[Problem]]:
    """Validate and compile doc: flags with structural problems are left out of the set.

    A flag whose only problems are in its targeting stays in (its evaluations yield
    PARSE_ERROR) and is reported, like in Go.
    """
    ev = _evaluators(doc)
    compiler = Compiler(ev)
    probs, bad_evaluators = _set_problems(doc, compiler)
    raw_meta = doc.get("metadata")
    meta: Mapping[str, Any] = (
        MappingProxyType(dict(raw_meta)) if isinstance(raw_meta, dict) and raw_meta else _EMPTY
    )
    flags_in = doc.get("flags")
    flags: dict[str, _Flag] = {}
    kept: dict[str, Any] = {}
    if isinstance(flags_in, dict):
        for key in sorted(flags_in):
            f = flags_in[key]
            c = _check_flag(key, f, compiler)
            probs.extend(c.structural)
            probs.extend(c.targeting)
            if c.structural:
                continue
            flags[key] = _Flag(key, f, c, meta)
            kept[key] = f
    out_doc: dict[str, Any] = {"flags": kept}
    good_ev = {k: v for k, v in ev.items() if k not in bad_evaluators}
    if good_ev:
        out_doc["$evaluators"] = good_ev
    if isinstance(raw_meta, dict) and raw_meta:
        out_doc["metadata"] = raw_meta
    schema = doc.get("$schema")
    if isinstance(schema, str) and schema:
        out_doc["$schema"] = schema
    version = meta.get("version")
    if isinstance(version, str) and version:
        revision = version
    else:
        try:
            revision = canonical.revision(out_doc)
        except canonical.CanonicalError as e:
            probs.append(Problem("", "metadata", str(e)))
            revision = ""
    return FlagSet(flags, out_doc, meta, revision), probs


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC: decoding, compiling and diffing a large snapshot allocate many
    small acyclic objects, and collections in the middle of that cost more than the work."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load(data: bytes | str) -> tuple[FlagSet, list[Problem]]:
    """parse followed by compile_document; raises ParseError for undecodable input."""
    with gc_paused():
        return compile_document(parse(data))


def diff(old: FlagSet | None, new: FlagSet) -> tuple[list[str], list[str], list[str]]:
    """Flag keys added, removed and changed (any field) from old to new, sorted."""
    if old is None:
        return new.keys(), [], []
    o = set(old.keys())
    n = set(new.keys())
    with gc_paused():
        changed = sorted(k for k in o & n if old.digest(k) != new.digest(k))
    return sorted(n - o), sorted(o - n), changed
