"""The flagsync snapshot format: parse, validate, compile and evaluate flag sets.

This mirrors the Go package github.com/flagsync/flagsync/flagset: same problems (paths and
messages), same evaluation results (value, variant, reason, error code, metadata) and the
same canonical encoding and revision. A FlagSet is immutable once built, so readers can
share one between threads and replace it with a single reference assignment.

The work is split by job, like the Go package: _parse decodes, _validate finds problems,
_compiled holds a compiled flag, and this module compiles documents into FlagSets and
evaluates them. Reading a snapshot validates every flag but builds a flag's compiled form
only when it is first evaluated: a reload of 10,000 flags allocates (and leaves the
garbage collector) little more than the decoded document.
"""

from __future__ import annotations

import marshal
import threading
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

from . import canonical
from ._compiled import _Flag
from ._parse import decode_json, parse
from ._quote import go_quote as _q
from ._types import (
    _DEFAULT,
    _EMPTY,
    _ERROR,
    _FLAG_NOT_FOUND,
    _STATIC,
    _TARGETING_MATCH,
    MAX_DEPTH,
    MAX_DOCUMENT_SIZE,
    ErrorCode,
    ParseError,
    Problem,
    Reason,
    Result,
    Type,
)
from ._validate import (
    _check_flag,
    _check_targeting,
    _evaluators,
    _parse_rfc3339,
    _set_problems,
    validate_flag,
)
from .jsonlogic import ROOT, Compiler, EvalState, is_number, type_name

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
    "parse",
    "validate",
    "validate_flag",
]


def validate(doc: Mapping[str, Any]) -> list[Problem]:
    """Every problem of the document: set level first, then flags in key order."""
    return compile_document(doc)[1]


_TYPES = {t.value: t for t in Type}


class FlagSet:
    """A validated, compiled, immutable flag set. Safe to share between threads.

    Every flag was validated when the set was made; a flag's compiled form (variants per
    type, rule, result metadata) is built when the flag is first evaluated, so a reload
    leaves behind little more than the decoded document, and the revision (without a
    metadata.version) is computed when first asked for.
    """

    __slots__ = (
        "_defs",
        "_flags",
        "_compiler",
        "_lock",
        "_prints",
        "_flawed",
        "_evaluators_print",
        "_doc",
        "_meta",
        "_revision",
        "_keys",
        "_generation",
        "_generated_at",
    )

    def __init__(
        self,
        defs: dict[str, Any],
        compiler: Compiler,
        doc: dict[str, Any],
        meta: Mapping[str, Any],
        revision: str | None,
        prints: dict[str, bytes | str] | None = None,
        flawed: frozenset[str] = frozenset(),
        evaluators_print: bytes | str = b"",
    ) -> None:
        self._defs = defs  # the valid flags' definitions (doc["flags"])
        self._flags: dict[str, _Flag] = {}  # compiled on first evaluation
        self._compiler = compiler  # holds the compiled $evaluators; not thread-safe
        self._lock = threading.Lock()  # serializes compiling (the compiler's use)
        # fingerprints of definitions (what diff compares), made when first needed
        self._prints: dict[str, bytes | str] = prints if prints is not None else {}
        self._flawed = flawed  # kept flags whose targeting has problems
        self._evaluators_print = evaluators_print  # _print of the document's $evaluators
        self._keys = sorted(defs)
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
        return len(self._defs)

    def __contains__(self, key: object) -> bool:
        return key in self._defs

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
        """metadata.version if present, else the computed revision ("" when the document
        cannot be encoded canonically), computed on first use."""
        r = self._revision
        if r is None:
            try:
                r = canonical.revision(self._doc)
            except canonical.CanonicalError:
                r = ""
            self._revision = r  # a race only computes the same value twice
        return r

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def generated_at(self) -> datetime | None:
        return self._generated_at

    def digest(self, key: str) -> str | None:
        """A fingerprint of key's definition (repr of the decoded definition: unlike ==,
        it tells true from 1); None for a flag the set does not hold."""
        definition = self._defs.get(key)
        return None if definition is None else repr(definition)

    def _fingerprint(self, key: str) -> bytes | str:
        """What diff compares: key's definition by _print, made once per set."""
        p = self._prints.get(key)
        if p is None:
            p = self._prints[key] = _print(self._defs[key])
        return p

    def _checked_alike(self, key: str, fingerprint: bytes | str, evaluators: bytes | str) -> bool:
        """Whether key was kept here without problems, defined as fingerprint says, with
        the same $evaluators: then checking that definition again would find nothing."""
        return (
            evaluators == self._evaluators_print
            and key in self._defs
            and key not in self._flawed
            and self._fingerprint(key) == fingerprint
        )

    def _compiled(self, key: str) -> _Flag | None:
        """key's compiled flag, compiled now if it is the first use; None if not held."""
        definition = self._defs.get(key)
        if definition is None:
            return None
        with self._lock:
            f = self._flags.get(key)
            if f is None:
                checked = _check_targeting(key, definition.get("targeting"), self._compiler, [])
                f = _Flag(key, definition, checked, self._meta)
                self._flags[key] = f
        return f

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
        f = self._flags.get(key) or self._compiled(key)
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


def compile_document(
    doc: Mapping[str, Any], previous: FlagSet | None = None
) -> tuple[FlagSet, list[Problem]]:
    """Validate and compile doc: flags with structural problems are left out of the set.

    A flag whose only problems are in its targeting stays in (its evaluations yield
    PARSE_ERROR) and is reported, like in Go. previous is the set this one replaces:
    a flag it holds without problems, defined the same (same $evaluators too), is not
    checked again and keeps previous's definition object, so a reload costs little
    more than decoding for unchanged flags.
    """
    ev = _evaluators(doc)
    compiler = Compiler(ev)
    probs, bad_evaluators = _set_problems(doc, compiler)
    raw_meta = doc.get("metadata")
    meta: Mapping[str, Any] = (
        MappingProxyType(dict(raw_meta)) if isinstance(raw_meta, dict) and raw_meta else _EMPTY
    )
    flags_in = doc.get("flags")
    kept: dict[str, Any] = {}
    prints: dict[str, bytes | str] = {}
    flawed: set[str] = set()
    ev_print = _print(doc.get("$evaluators"))
    if isinstance(flags_in, dict):
        for key in sorted(flags_in):
            f = flags_in[key]
            if previous is not None:
                fp = prints[key] = _print(f)
                if previous._checked_alike(key, fp, ev_print):
                    # previous's objects, equal to f: the decoded document is freed
                    # by reference counting, and the long-lived objects stay the
                    # same ones, so a reload does not set off a full collection
                    kept[key] = previous._defs[key]
                    prints[key] = previous._prints[key]
                    continue
            c = _check_flag(key, f, compiler)
            probs.extend(c.structural)
            probs.extend(c.targeting)
            if c.structural:
                prints.pop(key, None)
                continue
            if c.targeting:
                flawed.add(key)
            kept[key] = f  # compiled again, and kept, when first evaluated
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
    revision = version if isinstance(version, str) and version else None
    fs = FlagSet(kept, compiler, out_doc, meta, revision, prints, frozenset(flawed), ev_print)
    return fs, probs


def load(data: bytes | str, previous: FlagSet | None = None) -> tuple[FlagSet, list[Problem]]:
    """parse followed by compile_document; raises ParseError for undecodable input."""
    return compile_document(parse(data), previous)


def _print(definition: Any) -> bytes | str:
    """A definition's fingerprint: marshalled (C-fast and, unlike ==, exact about types:
    True is not 1), in format 2, which has no back-references, so equal definitions
    always marshal alike; repr for what marshal cannot encode."""
    try:
        return marshal.dumps(definition, 2)
    except ValueError:
        return repr(definition)


def diff(old: FlagSet | None, new: FlagSet) -> tuple[list[str], list[str], list[str]]:
    """Flag keys added, removed and changed (any field) from old to new, sorted."""
    if old is None:
        return new.keys(), [], []
    o = set(old.keys())
    n = set(new.keys())
    changed = sorted(k for k in o & n if old._fingerprint(k) != new._fingerprint(k))
    return sorted(n - o), sorted(o - n), changed
