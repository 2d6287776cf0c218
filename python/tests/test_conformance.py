"""The conformance suite through the Python evaluator, and the Python eval CLI against the Go
CLI byte for byte (conformance/README.md contract)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import CONFORMANCE

from flagsync import canonical
from flagsync.cli import eval_line
from flagsync.flagset import load, parse
from flagsync.jsonlogic import murmur3

SUITES: list[dict[str, Any]] = json.loads((CONFORMANCE / "suite.json").read_text())["suites"]


def _cases() -> list[Any]:
    out = []
    for s in SUITES:
        for line in (CONFORMANCE / s["cases"]).read_text(encoding="utf-8").split("\n"):
            if line.strip():
                c = json.loads(line)
                out.append(pytest.param(s, line, c, id=c["name"]))
    return out


_SETS: dict[str, Any] = {}


def _set(flags: str) -> Any:
    if flags not in _SETS:
        _SETS[flags] = load((CONFORMANCE / flags).read_bytes())[0]
    return _SETS[flags]


def test_suite_is_big_enough() -> None:
    assert len(_cases()) >= 200


@pytest.mark.parametrize(("suite", "line", "case"), _cases())
def test_case(suite: dict[str, Any], line: str, case: dict[str, Any]) -> None:
    out, err = eval_line(_set(suite["flags"]), suite["now"], line)
    assert err is None
    got = {k: out[k] for k in ("value", "variant", "reason", "errorCode")}
    # compare through the canonical encoding so 3 and 3.0 are the same JSON number
    assert canonical.encode(got) == canonical.encode(case["expect"]), case["name"]
    if "expectMetadata" in case:
        assert canonical.encode(out["metadata"]) == canonical.encode(case["expectMetadata"])


@pytest.mark.parametrize("suite", SUITES, ids=[s["cases"] for s in SUITES])
def test_cli_matches_go(go_cli: Path, suite: dict[str, Any]) -> None:
    flags = str(CONFORMANCE / suite["flags"])
    cases = CONFORMANCE / suite["cases"]
    args = ["eval", "--flags", flags, "--cases", str(cases), "--now", str(suite["now"])]
    go = subprocess.run([str(go_cli), *args], capture_output=True, check=False)
    py = subprocess.run([sys.executable, "-m", "flagsync", *args], capture_output=True, check=False)
    assert go.returncode == py.returncode == 0, (go.stderr, py.stderr)
    names = [
        json.loads(x)["name"] for x in cases.read_text(encoding="utf-8").split("\n") if x.strip()
    ]
    go_lines = go.stdout.decode().split("\n")[:-1]
    py_lines = py.stdout.decode().split("\n")[:-1]
    assert len(go_lines) == len(py_lines) == len(names)
    for name, g, p in zip(names, go_lines, py_lines, strict=True):
        assert p == g, f"{name}: python {p} != go {g}"


BAD_CASES = "\n".join(
    [
        '{"flag": "x", "type": "boolean", "default": true, "context": {}}',
        "not json",
        '{"flag": 3, "type": "boolean", "default": true}',
        '{"flag": "x", "type": "nope", "default": 1}',
        '{"flag": "x", "type": "integer", "default": 1.5}',
        '{"flag": "x", "type": "integer"}',
        '{"flag": "x", "type": "string", "default": "d", "context": []}',
        "",
        '{"flag": "x", "type": "float", "default": 2, "context": null}',
        '{"flag": "x", "type": "object", "default": {"a": [1, 2.5, "é\\u0001"]}}',
        "[1]",
        '{"flag": "x", "type": "boolean", "default": null}',
        '{"flag": "x", "default": true}',
        '{"flag": "x", "type": "float", "default": 1e400}',
        '{"flag": "x", "type": "float", "default": 1, "context": {"n": -1e999}}',
        '{"flag": "x", "type": "integer", "default": 9007199254740993}',
        '{"flag": null, "type": "integer", "default": 2.0}',
        "null",
    ]
)


def test_cli_bad_lines_match_go(go_cli: Path, tmp_path: Path) -> None:
    flags = tmp_path / "f.json"
    flags.write_text(
        '{"flags": {"x": {"state": "ENABLED", "variants": {"a": 1.0}, '
        '"defaultVariant": "a"}}, "metadata": {"flagSetId": "t"}}'
    )
    cases = tmp_path / "c.jsonl"
    cases.write_text(BAD_CASES + "\n")
    args = ["eval", "--flags", str(flags), "--cases", str(cases), "--now", "5"]
    go = subprocess.run([str(go_cli), *args], capture_output=True, check=False)
    py = subprocess.run([sys.executable, "-m", "flagsync", *args], capture_output=True, check=False)
    assert go.returncode == py.returncode == 1
    assert py.stdout.decode() == go.stdout.decode()
    go_err_lines = [x.split(": bad case")[0] for x in go.stderr.decode().splitlines()]
    py_err_lines = [x.split(": bad case")[0] for x in py.stderr.decode().splitlines()]
    assert py_err_lines == go_err_lines


def test_validate_matches_go(go_cli: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "flags": {
                    "ok": {"state": "ENABLED", "variants": {"on": True}, "defaultVariant": "on"},
                    "bad state": {"state": "ON", "variants": {}, "defaultVariant": 3, "extra": 1},
                    "mixed": {
                        "state": "ENABLED",
                        "variants": {"a": 1, "b": "x", "c": [1]},
                        "defaultVariant": "z",
                        "metadata": {"owner": 1, "expiresAt": "soon", "x": {"a": 1}},
                    },
                    "dv": {
                        "state": "ENABLED",
                        "variants": {"on": True, "off": False},
                        "defaultVariant": "onn",
                        "targeting": {"nope": [1], "if": []},
                    },
                    "t": {
                        "state": "DISABLED",
                        "variants": {"a": "a"},
                        "defaultVariant": None,
                        "targeting": {"if": [{"$ref": "missing"}, {"var": [1, 2, 3]}, {"<": [1]}]},
                    },
                    "arr": {"state": "ENABLED", "variants": {"a": "a"}, "targeting": [1]},
                    "nul": None,
                },
                "$evaluators": {"a": {"$ref": "b"}, "b": {"$ref": "a"}, "c": {"bad": 1}},
                "metadata": {"flagSetId": 1, "flagsync.generation": -1, "version": "v", "o": [1]},
                "extra": True,
            }
        )
    )
    files = [str(bad), *sorted(str(p) for p in (CONFORMANCE / "flags").iterdir())]
    go = subprocess.run([str(go_cli), "validate", *files], capture_output=True, check=False)
    py = subprocess.run(
        [sys.executable, "-m", "flagsync", "validate", *files], capture_output=True, check=False
    )
    assert py.returncode == go.returncode == 1
    assert py.stdout.decode() == go.stdout.decode()
    assert py.stderr.decode() == go.stderr.decode()


CANONICAL = json.loads((CONFORMANCE / "vectors" / "canonical.json").read_text())


@pytest.mark.parametrize("vec", CANONICAL, ids=[v["name"] for v in CANONICAL])
def test_canonical_vectors(vec: dict[str, Any]) -> None:
    doc = parse(vec["input"])
    assert canonical.encode_document(doc).decode() == vec["canonical"]
    assert canonical.revision(doc) == vec["revision"]


def test_murmur3_vectors() -> None:
    vecs = json.loads((CONFORMANCE / "vectors" / "murmur3.json").read_text())
    assert len(vecs) >= 30
    for v in vecs:
        assert murmur3(v["input"]) == v["hash"], v["input"]


def test_fractional_vectors() -> None:
    vecs = json.loads((CONFORMANCE / "vectors" / "fractional.json").read_text())
    for v in vecs:
        h = murmur3(v["bucketingKey"])
        assert h == v["hash"]
        total = sum(int(e[1]) if len(e) > 1 else 1 for e in v["entries"])
        assert (h * total) >> 32 == v["bucket"]
        doc = {
            "flags": {
                "f": {
                    "state": "ENABLED",
                    "defaultVariant": None,
                    "variants": {e[0]: e[0] for e in v["entries"]},
                    "targeting": {"fractional": [v["bucketingKey"], *v["entries"]]},
                }
            }
        }
        from flagsync.flagset import compile_document

        fs, probs = compile_document(doc)
        assert not probs
        assert fs.evaluate("f", "string", "").variant == v["variant"]
