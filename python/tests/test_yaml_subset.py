"""The YAML subset of docs/FORMAT.md, pinned by conformance/vectors/yaml.json (the Go
conformance test reads the same file), plus the resolver itself."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from conftest import CONFORMANCE

from flagsync import _yaml
from flagsync.flagset import ParseError, parse

VECTORS: list[dict[str, Any]] = json.loads((CONFORMANCE / "vectors" / "yaml.json").read_text())


def _same(a: Any, b: Any) -> bool:
    """JSON equality with every number as a double (1 == 1.0, True is not 1)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b) and type(a) is type(b)


def test_enough_vectors() -> None:
    assert len(VECTORS) >= 50


@pytest.mark.parametrize("vec", VECTORS, ids=[v["name"] for v in VECTORS])
def test_yaml_vector(vec: dict[str, Any]) -> None:
    if vec.get("error"):
        with pytest.raises(ParseError):
            parse(vec["input"])
        return
    got = parse(vec["input"].encode("utf-8"))["metadata"]["v"]
    assert _same(got, vec["value"]), (got, vec["value"])


@pytest.mark.parametrize(
    ("text", "kind", "want"),
    [
        ("12", "", 12),
        ("12", "float", 12.0),
        ("0x10", "int", 16),
        ("1.5", "", 1.5),
        ("true", "", True),
        ("true", "str", "true"),
        ("", "null", None),
        ("=", "", "="),
        ("2**53", "", "2**53"),
    ],
)
def test_resolve_scalar(text: str, kind: str, want: Any) -> None:
    got = _yaml.resolve_scalar(text, kind)
    assert _same(got, want)


@pytest.mark.parametrize(
    ("text", "kind"), [("x", "int"), ("1.5", "int"), ("1e999", ""), (".nan", "float")]
)
def test_resolve_scalar_errors(text: str, kind: str) -> None:
    with pytest.raises(_yaml.YAMLError):
        _yaml.resolve_scalar(text, kind)


def test_big_integers_round_like_go() -> None:
    # correctly rounded (half to even), as Go's strconv.ParseFloat / big.Float do
    assert _yaml.resolve_scalar(str(2**53 + 1)) == float(2**53)
    assert _yaml.resolve_scalar("0x20000000000001") == float(2**53)
    assert math.isclose(_yaml.resolve_scalar("0x" + "f" * 200), float(16**200 - 1))
