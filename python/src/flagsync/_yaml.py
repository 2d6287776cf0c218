"""The YAML subset of flag documents, read exactly like the Go reader (flagset/parse.go).

PyYAML only tokenizes here (with libyaml when present: the Go library is a port of it);
the value of every node is decided by our own rules (docs/FORMAT.md "YAML"): scalars by
the YAML 1.2 core schema, only the core tags, string map keys, no merge keys, aliases
expanded within a node budget, at most MAX_DEPTH levels. PyYAML's own resolver (YAML
1.1: yes/no booleans, sexagesimal numbers, "=" value keys) is never used.
"""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = ["YAMLError", "load", "resolve_scalar"]


class YAMLError(ValueError):
    """The text is not a document of the supported YAML subset."""


_NULL = frozenset(("", "~", "null", "Null", "NULL"))
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT10 = re.compile(r"[-+]?[0-9]+")
_INT8 = re.compile(r"0o[0-7]+")
_INT16 = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_NON_FINITE = re.compile(r"[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)")
_SURROGATE = re.compile("[\ud800-\udfff]")
_TWO53 = 2**53
_CORE_PREFIX = "tag:yaml.org,2002:"
_SCALAR_KINDS = frozenset(("str", "null", "bool", "int", "float"))


def _number(n: int) -> int | float:
    """An integer as the reader holds numbers: exact below 2^53, else the nearest double."""
    if -_TWO53 < n < _TWO53:
        return n
    try:
        return float(n)
    except OverflowError:
        raise YAMLError(f"{n} is beyond the double range") from None


def resolve_scalar(text: str, kind: str = "") -> Any:
    """Resolve plain scalar text by the YAML 1.2 core schema (kind "") or check it against
    one core tag (kind "str", "null", "bool", "int", "float"). Go: resolveYAMLScalar."""
    if kind == "str":
        return text
    if kind in ("", "null") and text in _NULL:
        return None
    if kind in ("", "bool") and text in _BOOL:
        return _BOOL[text]
    if kind in ("", "int", "float"):
        n: int | None = None
        if _INT10.fullmatch(text):
            n = int(text)
        elif _INT8.fullmatch(text):
            n = int(text[2:], 8)
        elif _INT16.fullmatch(text):
            n = int(text[2:], 16)
        if n is not None:
            try:
                v = _number(n)
            except YAMLError:
                raise YAMLError(f"{text!r} is beyond the double range") from None
            return float(v) if kind == "float" else v
    if kind in ("", "float"):
        if _FLOAT.fullmatch(text):
            f = float(text)
            if math.isinf(f):
                raise YAMLError(f"{text!r} is beyond the double range")
            return f
        if _NON_FINITE.fullmatch(text):
            raise YAMLError(f"{text!r} is not a finite number (JSON has no NaN/Infinity)")
    if kind == "":
        return text
    raise YAMLError(f"{text!r} is not a valid !!{kind}")


def _tag(tag: str | None) -> str:
    """An explicit tag in Go's short form ("!!str"); "" for none. The Go library treats
    the non-specific tag "!" as no tag, and so do we."""
    if tag is None or tag == "!":
        return ""
    if tag.startswith(_CORE_PREFIX):
        return "!!" + tag[len(_CORE_PREFIX) :]
    return tag


class _Frame:
    """A mapping or sequence being built."""

    __slots__ = ("value", "key", "nodes", "height", "anchor")

    def __init__(self, value: Any, anchor: str | None) -> None:
        self.value = value
        self.key: str | None = None  # a mapping's key waiting for its value
        self.nodes = 1  # nodes of the value, aliases expanded (keys do not count)
        self.height = 1  # nesting levels of the value, aliases expanded
        self.anchor = anchor


def load(text: str, size: int, max_depth: int) -> Any:
    """Decode the first document of text (size: its length in UTF-8 bytes)."""
    try:
        import yaml
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise YAMLError("YAML input needs PyYAML (pip install 'flagsync[yaml]')") from e
    loader = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
    try:
        return _build(yaml, yaml.parse(text, Loader=loader), size + 64, max_depth)
    except yaml.YAMLError as e:
        raise YAMLError(f"invalid YAML: {e}") from e


def _build(yaml: Any, events: Any, budget: int, max_depth: int) -> Any:
    """The value of the first document of an event stream, like Go's yamlConverter:
    every node produced counts against budget (an alias once more per expansion)."""
    anchors: dict[str, tuple[Any, int, int]] = {}  # name -> value, nodes, height
    stack: list[_Frame] = []
    nodes = 1  # the document node
    root: Any = None
    seen_document = False

    def place(value: Any, count: int, height: int, line: int) -> None:
        """Put a finished value (or a key) into the enclosing frame."""
        nonlocal nodes, root
        if not stack:
            root = value
            nodes += count
            return
        top = stack[-1]
        if isinstance(top.value, dict):
            if top.key is None:
                if not isinstance(value, str):
                    raise YAMLError(f"map key at line {line} is not a string (quote it)")
                top.key = value
                return
            top.value[top.key] = value
            top.key = None
        else:
            top.value.append(value)
        top.nodes += count
        top.height = max(top.height, height + 1)

    for ev in events:
        if isinstance(ev, yaml.DocumentStartEvent):
            seen_document = True
            continue
        if isinstance(ev, yaml.DocumentEndEvent):
            break
        if isinstance(ev, (yaml.StreamStartEvent, yaml.StreamEndEvent)):
            continue
        line = ev.start_mark.line + 1
        expects_key = bool(stack) and isinstance(stack[-1].value, dict) and stack[-1].key is None
        if isinstance(ev, yaml.ScalarEvent):
            if _SURROGATE.search(ev.value):
                # libyaml (and the Go library, a port of it) refuse surrogate escapes;
                # PyYAML's pure-Python scanner would read them
                raise YAMLError(f"line {line}: found invalid Unicode character escape code")
            tag = _tag(ev.tag)
            plain = not tag and ev.style in (None, "")
            if expects_key and plain and ev.value == "<<":
                raise YAMLError(f"YAML merge keys (<<) are not supported (line {line})")
            if tag and (not tag.startswith("!!") or tag[2:] not in _SCALAR_KINDS):
                raise YAMLError(
                    f"line {line}: tag {tag} is not supported "
                    "(use !!str, !!int, !!float, !!bool or !!null)"
                )
            try:
                value = (
                    resolve_scalar(ev.value, tag[2:] if tag else "") if tag or plain else ev.value
                )
            except YAMLError as e:
                raise YAMLError(f"line {line}: {e}") from None
            if ev.anchor is not None:
                anchors[ev.anchor] = (value, 1, 0)
            place(value, 0 if expects_key else 1, 0, line)
        elif isinstance(ev, yaml.AliasEvent):
            if ev.anchor not in anchors:
                raise YAMLError(
                    f"line {line}: unknown anchor {ev.anchor!r} (or an alias inside its own node)"
                )
            value, count, height = anchors[ev.anchor]
            if len(stack) + height > max_depth:
                raise YAMLError(
                    f"document nesting is deeper than the limit of {max_depth} levels (line {line})"
                )
            place(value, 0 if expects_key else 1 + count, height, line)
        elif isinstance(ev, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            is_map = isinstance(ev, yaml.MappingStartEvent)
            if expects_key:
                raise YAMLError(f"map key at line {line} is not a string")
            if len(stack) + 1 > max_depth:
                raise YAMLError(
                    f"document nesting is deeper than the limit of {max_depth} levels (line {line})"
                )
            tag = _tag(ev.tag)
            if tag and tag != ("!!map" if is_map else "!!seq"):
                kind = "mapping" if is_map else "sequence"
                raise YAMLError(f"line {line}: tag {tag} is not supported on a {kind}")
            stack.append(_Frame({} if is_map else [], ev.anchor))
        elif isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            frame = stack.pop()
            if frame.anchor is not None:
                anchors[frame.anchor] = (frame.value, frame.nodes, frame.height)
            place(frame.value, frame.nodes, frame.height, line)
    if not seen_document:
        raise YAMLError("document is empty")
    if nodes > budget:
        raise YAMLError("YAML aliases expand to more data than the document size allows")
    return root
