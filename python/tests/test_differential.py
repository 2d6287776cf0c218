"""Differential test: random JsonLogic rules and contexts (fixed seed) through the Go and the
Python eval CLIs must give byte-identical output lines. It finds corners the hand-written
conformance cases do not cover (coercions, odd arities, nested data)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

SCALARS: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    2.5,
    -0.5,
    1e21,
    1e-7,
    3,
    10,
    "",
    "0",
    "1",
    "2.5",
    "a",
    "abc",
    " 1 ",
    "1e3",
    "Infinity",
    "true",
    "null",
    "é",
    "v1.2.3",
    "1.2.0-rc.1",
    "x@example.com",
]
OPS_BINARY = [
    "==",
    "===",
    "!=",
    "!==",
    "<",
    "<=",
    ">",
    ">=",
    "+",
    "-",
    "*",
    "/",
    "%",
    "in",
    "cat",
    "min",
    "max",
    "starts_with",
    "ends_with",
    "substr",
    "merge",
]
OPS_UNARY = ["!", "!!", "-", "+", "var", "missing", "cat"]
VARS = ["a", "b", "n", "s", "list", "obj.k", "obj.list.1", "missing", "targetingKey", ""]


def rand_expr(rng: random.Random, depth: int) -> Any:
    r = rng.random()
    if depth <= 0 or r < 0.25:
        return rng.choice(SCALARS)
    if r < 0.45:
        v = rng.choice(VARS)
        return {"var": [v, rng.choice(SCALARS)]} if rng.random() < 0.2 else {"var": v}
    if r < 0.75:
        op = rng.choice(OPS_BINARY)
        n = rng.choice([2, 2, 2, 3]) if op in ("<", "<=", "substr", "cat", "+", "*") else 2
        return {op: [rand_expr(rng, depth - 1) for _ in range(n)]}
    if r < 0.85:
        return {rng.choice(OPS_UNARY): [rand_expr(rng, depth - 1)]}
    if r < 0.92:
        return {"if": [rand_expr(rng, depth - 1) for _ in range(rng.choice([1, 2, 3, 4, 5]))]}
    if r < 0.95:
        op = rng.choice(["map", "filter", "some", "all", "none"])
        return {op: [{"var": "list"}, rand_expr(rng, depth - 1)]}
    if r < 0.97:
        return rng.choice(
            [
                {
                    "sem_ver": [
                        rand_expr(rng, 0),
                        rng.choice(["=", "!=", "<", "<=", ">", ">=", "^", "~", "=="]),
                        rng.choice(SCALARS),
                    ]
                },
                {
                    "fractional": [
                        rand_expr(rng, 1),
                        ["true", rng.choice([1, 2.5, -1, 0])],
                        ["false", rng.choice([1, 3, 0])],
                    ]
                },
                {"fractional": [["true", 1], ["false", rng.choice(SCALARS)]]},
                {"missing_some": [rng.choice([0, 1, 2, "1"]), ["a", "b", "missing", "obj.k"]]},
                {
                    "reduce": [
                        {"var": "list"},
                        {"+": [{"var": "current"}, {"var": "accumulator"}]},
                        rand_expr(rng, 0),
                    ]
                },
                {"?:": [rand_expr(rng, 1), rand_expr(rng, 1), rand_expr(rng, 1)]},
                {
                    "var": rng.choice(
                        [
                            0,
                            1,
                            "$flagd.flagKey",
                            "$flagd.timestamp",
                            "$flagd",
                            None,
                            ["list.0"],
                            "list.01",
                            "list.-1",
                        ]
                    )
                },
                {"!": [rand_expr(rng, 1), rand_expr(rng, 1)]},
                {"nope": [1]},
                {
                    "substr": [
                        rand_expr(rng, 1),
                        rng.choice([-2, 0, 1, 1e300, "x"]),
                        rng.choice([-1, 2, -100, "2"]),
                    ]
                },
            ]
        )
    return {rng.choice(["and", "or"]): [rand_expr(rng, depth - 1) for _ in range(3)]}


def rand_context(rng: random.Random) -> dict[str, Any]:
    ctx: dict[str, Any] = {}
    for k in ("a", "b", "n", "s"):
        if rng.random() < 0.8:
            ctx[k] = rng.choice(SCALARS)
    if rng.random() < 0.7:
        ctx["list"] = [rng.choice(SCALARS) for _ in range(rng.randint(0, 4))]
    if rng.random() < 0.6:
        ctx["obj"] = {"k": rng.choice(SCALARS), "list": [rng.choice(SCALARS) for _ in range(3)]}
    if rng.random() < 0.7:
        ctx["targetingKey"] = rng.choice(["u1", "u2", "", "é"])
    return ctx


def test_random_rules_match_go(go_cli: Path, tmp_path: Path) -> None:
    rng = random.Random(20260101)
    flags: dict[str, Any] = {}
    cases: list[str] = []
    for i in range(300):
        key = f"r{i}"
        # the rule's value becomes the variant name via cat, so every result is comparable
        rule = {"cat": [rand_expr(rng, 3)]} if i % 3 else rand_expr(rng, 3)
        flags[key] = {
            "state": "ENABLED",
            "variants": {"true": True, "false": False},
            "defaultVariant": "false",
            "targeting": rule,
        }
        for _ in range(3):
            cases.append(
                json.dumps(
                    {"flag": key, "type": "boolean", "default": True, "context": rand_context(rng)}
                )
            )
    ff = tmp_path / "flags.json"
    ff.write_text(json.dumps({"flags": flags, "metadata": {"flagSetId": "diff"}}))
    cf = tmp_path / "cases.jsonl"
    cf.write_text("\n".join(cases) + "\n")
    args = ["eval", "--flags", str(ff), "--cases", str(cf), "--now", "1767225600"]
    go = subprocess.run([str(go_cli), *args], capture_output=True, check=False)
    py = subprocess.run([sys.executable, "-m", "flagsync", *args], capture_output=True, check=False)
    assert go.returncode == py.returncode == 0, (go.stderr[-2000:], py.stderr[-2000:])
    go_lines = go.stdout.decode().split("\n")
    py_lines = py.stdout.decode().split("\n")
    assert len(go_lines) == len(py_lines)
    bad = [
        (cases[i], flags[json.loads(cases[i])["flag"]]["targeting"], g, p)
        for i, (g, p) in enumerate(zip(go_lines, py_lines, strict=True))
        if g != p and i < len(cases)
    ]
    assert not bad, "\n".join(
        f"case {c}\nrule {json.dumps(r)}\ngo {g}\npy {p}" for c, r, g, p in bad[:5]
    )
    # the stderr problems (rules that do not compile) agree too
    assert py.stderr.decode() == go.stderr.decode()
