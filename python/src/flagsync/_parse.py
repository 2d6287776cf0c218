"""Decoding a snapshot: JSON or YAML, within the size and depth limits every reader holds.

Mirrors parse.go and jsondecode.go of the Go flagset package.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from typing import Any

from . import _yaml
from ._types import MAX_DEPTH, MAX_DOCUMENT_SIZE, ParseError


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


# Every byte but brackets and quotes, for bytes.translate to delete.
_NOT_BRACKET_OR_QUOTE = bytes(c for c in range(256) if c not in b'[]{}"')
_BRACKETS_AS_PARENS = bytes.maketrans(b"[]{}", b"()()")
_BRACKET_DEPTH = {ord("("): 1, ord(")"): -1}


def _check_json_depth(text: bytes | str) -> None:
    """Fail fast on nesting deeper than MAX_DEPTH, before json.loads recurses.

    Counts like Go's checkJSONDepth, with bytes operations that run in C instead of
    a loop per character: escaped backslashes and quotes are dropped first (so every
    remaining quote opens or closes a string), then everything but brackets and
    quotes, then the brackets inside strings; innermost bracket pairs are then
    removed once per level. For valid JSON this is Go's count exactly; for text with a
    backslash outside any string (never valid) only the error message can differ.
    """
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if data.count(b"[") + data.count(b"{") <= MAX_DEPTH:
        return
    if b"\\" in data:
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    # Dropping two adjacent quotes (an empty string, or the end of one string and the
    # start of the next) keeps every bracket on its side of the quotes, and leaves
    # few quotes, if any, for the split.
    brackets = data.translate(None, _NOT_BRACKET_OR_QUOTE).replace(b'""', b"")
    if b'"' in brackets:
        brackets = b"".join(brackets.split(b'"')[::2])
    brackets = brackets.translate(_BRACKETS_AS_PARENS)
    rest = brackets
    for _ in range(MAX_DEPTH):  # each pass removes the innermost pairs: one level
        inner = rest.replace(b"()", b"")
        if not inner:
            return
        if len(inner) == len(rest):
            break
        rest = inner
    # deeper than the limit, or unbalanced (never valid JSON): Go's running count
    deepest = max(itertools.accumulate(map(_BRACKET_DEPTH.__getitem__, brackets)))
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
    try:
        v = json.loads(text, **kw)
    except RecursionError:  # only text that is not JSON gets past the depth check so deep
        raise ParseError(
            f"document nesting is deeper than the limit of {MAX_DEPTH} levels"
        ) from None
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
