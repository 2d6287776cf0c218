"""Canonical JSON encoding and revisions, byte-identical to the Go flagset package.

The rules (docs/FORMAT.md "Canonical encoding and revision"): no insignificant
whitespace, object keys sorted by code point, a fixed small set of string escapes and
ECMAScript Number::toString for numbers that are not small integers. json.dumps is not
used because its number formatting (1.0, 1e+21 vs 1e21) and escapes differ.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

__all__ = [
    "CanonicalError",
    "encode",
    "encode_document",
    "js_number_string",
    "revision",
]

_TWO53 = float(2**53)
_TWO53_INT = 2**53


class CanonicalError(ValueError):
    """A value that has no canonical JSON form (NaN, infinity, a non-JSON type)."""


_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}
for _c in range(0x20):
    _ESCAPES.setdefault(chr(_c), f"\\u{_c:04x}")
_ESC_TABLE = str.maketrans(_ESCAPES)


def encode_string(s: str) -> str:
    """Quote s with the canonical escapes (only '"', '\\' and control characters)."""
    return '"' + s.translate(_ESC_TABLE) + '"'


def js_number_string(v: float | int) -> str:
    """ECMAScript Number::toString of v (shortest round-trip digits).

    1.0 -> "1", 1.5 -> "1.5", 1e21 -> "1e+21", 1e-7 -> "1e-7", -0.0 -> "0".
    """
    if isinstance(v, bool):
        raise CanonicalError("bool is not a number")
    if isinstance(v, int):
        if -(2**53) < v < 2**53:
            return str(v)
        v = float(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    if v == 0:
        return "0"
    if v.is_integer() and abs(v) < _TWO53:
        return str(int(v))
    sign = "-" if v < 0 else ""
    # repr gives the shortest round-trip digits; Decimal splits them exactly.
    t = Decimal(repr(abs(v))).as_tuple()
    digits = "".join(map(str, t.digits)).rstrip("0")
    exp = int(t.exponent) + (len(t.digits) - len(digits))
    digits = digits.lstrip("0")
    n = len(digits) + exp  # value = 0.digits * 10**n
    k = len(digits)
    if k <= n <= 21:
        out = digits + "0" * (n - k)
    elif 0 < n <= 21:
        out = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        es = ("+" if e >= 0 else "-") + str(abs(e))
        out = digits[0] + ("." + digits[1:] if k > 1 else "") + "e" + es
    return sign + out


def _number(v: float | int) -> str:
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            raise CanonicalError(f"number {v!r} has no JSON form")
        if v.is_integer() and abs(v) < _TWO53:
            return str(int(v))
    return js_number_string(v)


def _enc(v: Any, out: list[str]) -> None:
    if v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif isinstance(v, str):
        out.append(encode_string(v))
    elif isinstance(v, (int, float)):
        out.append(_number(v))
    elif isinstance(v, Mapping):
        out.append("{")
        first = True
        for k in sorted(v):
            if not isinstance(k, str):
                raise CanonicalError(f"object key {k!r} is not a string")
            if not first:
                out.append(",")
            first = False
            out.append(encode_string(k))
            out.append(":")
            _enc(v[k], out)
        out.append("}")
    elif isinstance(v, (list, tuple)):
        out.append("[")
        for i, item in enumerate(v):
            if i:
                out.append(",")
            _enc(item, out)
        out.append("]")
    else:
        raise CanonicalError(f"value of type {type(v).__name__} has no JSON form")


# json's C encoder already escapes strings exactly like the canonical rules (only '"', '\\'
# and U+0000-U+001F, with \b \t \n \f \r and lowercase \u00xx) and sorts keys by code
# point; only its number format differs, so it is used when every number is one it prints
# the ECMAScript way.
_json_encode = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
).encode


def _plain(v: Any) -> bool:
    """True when json's encoder prints every number in v like Number::toString."""
    if isinstance(v, str) or v is None or v is True or v is False:
        return True
    if isinstance(v, dict):
        for k, x in v.items():
            if type(k) is not str or not (type(x) is str or _plain(x)):
                return False
        return True
    if isinstance(v, list):
        return all(type(x) is str or _plain(x) for x in v)
    if type(v) is int:
        return -_TWO53_INT < v < _TWO53_INT
    if type(v) is float:
        # integral floats print as "1.0" and small/large ones as "1e-07": not plain
        return not v.is_integer() and "e" not in repr(v)
    return False


def encode(v: Any) -> str:
    """The canonical JSON text of any JSON-like value (dict keys sorted by code point).

    Python sorts str by code point, which equals UTF-8 byte order, as the rules require.
    """
    if _plain(v):
        return _json_encode(v)
    out: list[str] = []
    _enc(v, out)
    return "".join(out)


def flag_form(f: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"defaultVariant": f.get("defaultVariant")}
    if f.get("metadata"):
        out["metadata"] = f["metadata"]
    out["state"] = f.get("state")
    t = f.get("targeting")
    if t is not None and t != {}:
        out["targeting"] = t
    out["variants"] = f.get("variants")
    return out


def document_form(doc: Mapping[str, Any], *, for_revision: bool = False) -> dict[str, Any]:
    """The document shaped by the canonical rules (optional members omitted when empty).

    for_revision drops the volatile parts: $schema, metadata.version and metadata keys
    starting with "flagsync.".
    """
    out: dict[str, Any] = {}
    if doc.get("$evaluators"):
        out["$evaluators"] = doc["$evaluators"]
    flags = doc.get("flags") or {}
    out["flags"] = {k: flag_form(f) for k, f in flags.items()}
    meta = dict(doc.get("metadata") or {})
    if for_revision:
        meta = {k: v for k, v in meta.items() if k != "version" and not k.startswith("flagsync.")}
    if meta:
        out["metadata"] = meta
    if not for_revision and doc.get("$schema"):
        out["$schema"] = doc["$schema"]
    return out


def encode_document(doc: Mapping[str, Any]) -> bytes:
    """The canonical encoding of a flag document (as the daemon writes snapshots)."""
    return encode(document_form(doc)).encode("utf-8")


def revision(doc: Mapping[str, Any]) -> str:
    """Lowercase hex SHA-256 of the canonical encoding without volatile metadata."""
    data = encode(document_form(doc, for_revision=True)).encode("utf-8")
    return hashlib.sha256(data).hexdigest()
